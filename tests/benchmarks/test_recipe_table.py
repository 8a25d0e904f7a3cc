"""benchmarks/recipe_table.py --retest: a cell's test measured again on its checkpoint keeps the
fit's measurements and replaces every test field, and only for the cell that made the file."""

from __future__ import annotations

from pathlib import Path

import pytest
from helpers.benchmark_scripts import load_benchmark

recipe_table = load_benchmark("recipe_table")

FIT = "python main.py fit --config configs/quickstart.yaml --data.root data/x"
TEST = ["/usr/bin/python", "main.py", "test", "--data.root", "data/x", "--ckpt_path", "last"]


def _previous() -> dict:
    return {
        "name": "x",
        "data_root": "data/x",
        "configs": ["configs/quickstart.yaml"],
        "overrides": [],
        "fit_command": FIT,
        "test_command": "python main.py test (old)",
        "fresh_machine": "empty TORCH_HOME",
        "fit_seconds": 1399.0,
        "warm_fit_seconds": None,
        "test_seconds": 155.4,
        "built_weights": [{"val_acc": 0.97}],
        "machine": "fit machine",
        "test_acc": 0.5,
        "num_images": 500,
        "rows": [{"strategy": "old", "miou": 0.1}],
        "clicks": None,
        "class_f1_macro": 0.9,
        "stale_key": "from an older version of the script",
    }


def _results() -> dict:
    return {
        "test/acc": 0.88,
        "num_images": 500,
        "rows": [{"strategy": "new", "miou": 0.7}],
        "class_f1": {"Ring": 0.95},
        "class_f1_macro": 0.95,
        "unrelated": 1,
    }


def test_a_retest_keeps_the_fit_and_replaces_the_test() -> None:
    tested = recipe_table.test_fields(_results(), TEST, 61.25)
    record = recipe_table.retested(_previous(), tested, "test machine")
    previous = _previous()
    for key in ("fit_command", "fit_seconds", "built_weights", "machine", "fresh_machine"):
        assert record[key] == previous[key]
    assert record["test_command"] == "python main.py test --data.root data/x --ckpt_path last"
    assert record["test_seconds"] == 61.2
    assert record["test_acc"] == 0.88
    assert record["rows"] == [{"strategy": "new", "miou": 0.7}]
    assert record["class_f1"] == {"Ring": 0.95} and record["class_f1_macro"] == 0.95
    assert record["retested"] == {"machine": "test machine"}
    assert "stale_key" not in record and "unrelated" not in record


def test_a_retest_of_another_cell_is_refused() -> None:
    recipe_table.check_same_cell(_previous(), FIT)
    with pytest.raises(SystemExit, match="fit_command") as refused:
        recipe_table.check_same_cell(_previous(), FIT + " --model.lr 0.1")
    assert FIT in str(refused.value) and "--model.lr 0.1" in str(refused.value)


def test_a_retest_without_the_cell_file_names_it(tmp_path: Path, capsys) -> None:
    missing = tmp_path / "cell.json"
    with pytest.raises(SystemExit):
        recipe_table.main(
            ["--name", "x", "--data-root", "data/x", "--output", str(missing), "--retest"]
        )
    assert f"--retest: {missing} does not exist" in capsys.readouterr().err
