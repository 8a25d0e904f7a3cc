"""What every results renderer shares: where the results files are, how they are read, how a
number is printed and how a table of pipeline rows is drawn.

Each loader reads the module global `RESULTS` when called, so a test can point every renderer at
a copy of `results/` by patching this one name.
"""

from __future__ import annotations

import json
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "results"

#: The ground-truth point oracle's row: the innermost point, or in older files the centroid.
POINT_ORACLES = ("GroundTruthPoint", "GroundTruthCentroid")


def load_result(relative: str) -> dict:
    """The JSON record at `relative`, a path under `results/`."""
    return json.loads((RESULTS / relative).read_text())


def load_recipe(stem: str) -> dict:
    """A recipe cell's record, `results/recipes/<stem>.json`."""
    return load_result(f"recipes/{stem}.json")


def fmt(value: float | None, digits: int = 3) -> str:
    """`value` to `digits` decimals; a dash where a file has no such number."""
    return "–" if value is None else f"{value:.{digits}f}"


def oracle_iou(rows: list[dict], oracle: str | None = None) -> float:
    """The IoU of the `oracle` row (default: the ground-truth point oracle's)."""
    names = POINT_ORACLES if oracle is None else (oracle,)
    return next(r["iou"] for r in rows if r["strategy"] in names)


def pipeline_rows(relative: str) -> list[dict]:
    """Pipeline rows of a results file: a recipe cell's, a results.json's, or a timed run's."""
    data = load_result(relative)
    return data.get("results", data)["rows"]


def best_method(rows: list[dict]) -> dict:
    """The non-oracle pipeline with the highest IoU."""
    return max((r for r in rows if not r["uses_ground_truth"]), key=lambda r: r["iou"])


def row_table(rows: list[dict], columns: list[str]) -> str:
    """A (segmenter, strategy) row per pipeline, with `columns` of its metrics; oracles marked."""
    lines = [
        "| segmenter | strategy | " + " | ".join(columns) + " |",
        "|---|---|" + "---|" * len(columns),
    ]
    for row in rows:
        name = row["strategy"] + (" (oracle: uses GT)" if row["uses_ground_truth"] else "")
        values = " | ".join(fmt(row.get(column)) for column in columns)
        lines.append(f"| {row['segmenter']} | {name} | {values} |")
    return "\n".join(lines)
