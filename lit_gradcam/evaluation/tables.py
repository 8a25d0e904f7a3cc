"""The results tables: every metric per (segmenter, strategy) for results.md, and a compact one
for TensorBoard's TEXT tab under the run's headline (its best no-click and oracle rows)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

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
#: Metric columns of TensorBoard's table: the score first, then how often the point hit, then
#: (when the clicker ran) what the score is worth in clicks. Few and narrow, so the table reads
#: without wrapping in a text card; results.md keeps every column.
COMPACT_COLUMNS = ("iou", "hit_rate_fg", "worth_clicks")
#: The same for class-map folders (mIoU over the classes, object prompts on their object).
CLASS_MAP_COMPACT_COLUMNS = ("miou", "object_hit_rate")


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


@dataclass(frozen=True)
class Headline:
    """What a run comes to: the classifier's accuracy and, by `score` ("iou", or "miou" on
    class-map folders), the best no-click row and the best oracle row (None where no row of the
    kind has a score); `clicked` when the clicker put a `worth_clicks` into the rows."""

    accuracy: float | None
    score: str
    no_click: dict[str, Any] | None
    oracle: dict[str, Any] | None
    clicked: bool

    @classmethod
    def of(cls, rows: Sequence[dict[str, Any]], score: str, accuracy: float | None) -> Headline:
        def best(oracle: bool) -> dict[str, Any] | None:
            scored = [
                row
                for row in rows
                if bool(row.get("uses_ground_truth")) == oracle and row.get(score) is not None
            ]
            return max(scored, key=lambda row: row[score], default=None)

        clicked = any("worth_clicks" in row for row in rows)
        return cls(accuracy, score, best(oracle=False), best(oracle=True), clicked)

    @property
    def worth_clicks(self) -> float | None:
        """The best no-click row's IoU in clicks of the simulated user."""
        return None if self.no_click is None else self.no_click.get("worth_clicks")

    def scores(self) -> dict[str, float | None]:
        """The headline's numbers besides accuracy: the best no-click row's score and the best
        oracle's (`no_click_iou`, `oracle_iou`; `_miou` on class maps) and, when the clicker
        ran, the best no-click row's `worth_clicks`."""
        kinds = (("no_click", self.no_click), ("oracle", self.oracle))
        scores = {f"{k}_{self.score}": None if r is None else r[self.score] for k, r in kinds}
        if self.clicked:
            scores["worth_clicks"] = self.worth_clicks
        return scores

    def as_dict(self) -> dict[str, Any]:
        """For results.json: the accuracy, each best row's name, and `scores`."""
        no_click, oracle = (None if r is None else _name(r) for r in (self.no_click, self.oracle))
        return {"accuracy": self.accuracy, "no_click": no_click, "oracle": oracle, **self.scores()}

    def markdown(self) -> str:
        """A Markdown list: accuracy, best no-click row (and its worth in clicks), best oracle."""
        lines = [f"- accuracy **{_format(self.accuracy)}**"]
        if self.no_click is not None:
            worth = self.worth_clicks
            clicks = "" if worth is None else f", worth {worth:.2f} clicks"
            lines.append(f"- best no-click: {self._scored(self.no_click)}{clicks}")
        if self.oracle is not None:
            lines.append(f"- best oracle: {self._scored(self.oracle)}")
        return "\n".join(lines)

    def _scored(self, row: dict[str, Any]) -> str:
        return f"{_name(row)}, {self.score} **{_format(row[self.score])}**"


def compact_table(rows: list[dict[str, Any]], columns: Sequence[str], headline: Headline) -> str:
    """Markdown for TensorBoard's TEXT tab: the headline, then one row per (segmenter,
    strategy) with the `columns` that any row has (`worth_clicks` only when the clicker ran)."""
    columns = [column for column in columns if any(column in row for row in rows)]
    header = "| segmenter | strategy | " + " | ".join(columns) + " |"
    lines = [headline.markdown(), "", header, "|" + "---|" * (len(columns) + 2)]
    for row in rows:
        strategy = str(row["strategy"]) + (" (oracle)" if row.get("uses_ground_truth") else "")
        cells = [_format(row.get(column)) for column in columns]
        lines.append(f"| {row['segmenter']} | {strategy} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def _name(row: dict[str, Any]) -> str:
    return f"{row['segmenter']} / {row['strategy']}"


def _format(value: object) -> str:
    return "–" if value is None else f"{value:.3f}"
