"""The tables of README.md and docs/ are rendered from the committed `results/` files, never
typed."""

import importlib
import importlib.util
import json
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
# The script imports its sibling modules as `python scripts/render_results.py` would find them.
sys.path.insert(0, str(ROOT / "scripts"))
spec = importlib.util.spec_from_file_location("render_results", ROOT / "scripts/render_results.py")
render_results = importlib.util.module_from_spec(spec)
spec.loader.exec_module(render_results)
#: The module whose `RESULTS` every loader reads (the same object render_results imported).
result_tables = importlib.import_module("result_tables")


def _pages() -> dict[str, str]:
    return {str(path.relative_to(ROOT)): path.read_text() for path in render_results.PAGES}


def test_readme_and_docs_match_the_results_files() -> None:
    pages = _pages()
    assert "README.md" in pages and any(page.startswith("docs/") for page in pages)
    assert render_results.render_pages(pages) == pages, "run `python scripts/render_results.py`"


def test_a_changed_number_is_caught(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Edit one committed number in a copy of results/: the README no longer matches."""
    copy = tmp_path / "results"
    for source in (ROOT / "results").rglob("*.json"):
        target = copy / source.relative_to(ROOT / "results")
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(source.read_text())
    cell = copy / "recipes" / f"{render_results.RECIPE_CELLS[0][0]}.json"
    record = json.loads(cell.read_text())
    record["test_acc"] = record["test_acc"] / 2
    cell.write_text(json.dumps(record))
    monkeypatch.setattr(result_tables, "RESULTS", copy)
    pages = _pages()
    assert render_results.render_pages(pages) != pages


def test_a_missing_or_doubled_block_is_reported() -> None:
    with pytest.raises(ValueError, match="recipe-table --> is in no page"):
        render_results.render_pages({"README.md": "# a README without generated blocks\n"})
    pages = _pages()
    holder = next(page for page, text in pages.items() if "<!-- BEGIN recipe-table -->" in text)
    block = pages[holder][pages[holder].index("<!-- BEGIN recipe-table -->") :]
    block = block[: block.index("<!-- END recipe-table -->") + len("<!-- END recipe-table -->")]
    with pytest.raises(ValueError, match="recipe-table --> is in"):
        render_results.render_pages({**pages, "docs/copy.md": block + "\n"})
