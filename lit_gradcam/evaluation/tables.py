"""The results table: one Markdown row per (segmenter, strategy), oracle rows marked."""

from __future__ import annotations

from collections.abc import Sequence

#: Metric columns of the results table, in the order of the report's Table 1 and then ours; the
#: `_cam` pair scores the point the heatmap gave before the segmenter took part.
TABLE_COLUMNS = (
    "hit_rate_fg",
    "iou",
    "iou_pixel",
    "distance_fg",
    "hit_rate_bg",
    "distance_bg",
    "hit_rate_fg_cam",
    "distance_fg_cam",
)


def results_table(rows: list[dict[str, object]], columns: Sequence[str] = TABLE_COLUMNS) -> str:
    """A Markdown table, one row per (segmenter, strategy), oracle rows marked as ceilings."""
    header = "| segmenter | strategy | " + " | ".join(columns) + " |"
    lines = [header, "|" + "---|" * (len(columns) + 2)]
    for row in rows:
        strategy = str(row["strategy"])
        if row.get("uses_ground_truth"):
            strategy += " (oracle: uses GT)"
        cells = [_format(row.get(column)) for column in columns]
        lines.append(f"| {row['segmenter']} | {strategy} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def _format(value: object) -> str:
    return "–" if value is None else f"{value:.3f}"
