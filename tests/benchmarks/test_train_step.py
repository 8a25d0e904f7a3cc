"""benchmarks/train_step.py --check: it fails when the quick start's step, flag included, rose
past the tolerance over the committed measurement, and passes within it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from helpers.benchmark_scripts import load_benchmark

train_step = load_benchmark("train_step")


def _rows(ratio: float) -> list[dict]:
    return [
        {"variant": "plain", "ratio_to_plain": 1.0},
        {"variant": "quickstart_with_flag", "ratio_to_plain": ratio},
    ]


@pytest.fixture
def committed(tmp_path: Path) -> Path:
    path = tmp_path / "train_step.json"
    path.write_text(json.dumps({"rows": _rows(0.5)}))
    return path


def test_a_step_within_the_tolerance_holds(committed: Path, capsys) -> None:
    train_step._check(_rows(0.57), committed, tolerance=0.15)
    assert "holds" in capsys.readouterr().out


def test_a_step_past_the_tolerance_fails_and_says_what_to_re_measure(committed: Path) -> None:
    with pytest.raises(SystemExit, match="recipe_table.py") as stopped:
        train_step._check(_rows(0.58), committed, tolerance=0.15)
    assert "16% slower" in str(stopped.value.code)
