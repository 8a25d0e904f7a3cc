"""No-click results in the field's units: clicks of a simulated user, per segmenter.

For each segmenter, `ClickScoring` lets the clicker (`click_ious`) segment every image from
nothing, giving the segmenter's mIoU after 1-5 clicks and its NoC@85/90; for each no-click
strategy, it starts the clicker from the strategy's own prompts (as prompts: the seam takes no
mask input) and counts the clicks to reach 0.90 (`noc90_from_start`). `annotate` then writes into
each results row what its IoU is worth in clicks on its segmenter's curve (`worth_clicks`).
Images with an empty ground truth are left out, as every segmentation metric leaves them out.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from torch import Tensor, nn

from lit_gradcam.evaluation.click_metrics import START_THRESHOLD, ClickMetrics, worth_clicks
from lit_gradcam.evaluation.clicker import click_ious
from lit_gradcam.method.results import PipelineOutput
from lit_gradcam.prompt_types import Prompts
from lit_gradcam.segmenters.base import Segmenter

#: Clicks a simulated user gives at most per image (NoC's cap, as the field counts it).
MAX_CLICKS = 20
#: The clicks every image gets, for mIoU after 1..`MIOU_CLICKS` clicks.
MIOU_CLICKS = 5


class ClickScoring(nn.Module):
    """Click metrics per segmenter (clicks from nothing) and per (segmenter, no-click strategy)
    (clicks from the strategy's prompts); every state a sum, so it syncs under DDP.

    segmenters: names of the segmenters scored; strategies: names of the no-click strategies
    whose prompts start a click loop.
    """

    def __init__(self, segmenters: Sequence[str], strategies: Sequence[str]) -> None:
        super().__init__()
        self.segmenters = list(segmenters)
        self.strategies = list(strategies)
        keys = [*self.segmenters, *self._started_keys()]
        # a ModuleList (ModuleDict keys may not hold "/") so the metrics follow the module
        self._metric_list = nn.ModuleList(ClickMetrics(MAX_CLICKS, MIOU_CLICKS) for _ in keys)
        self.metrics = dict(zip(keys, self._metric_list, strict=True))

    def _started_keys(self) -> list[str]:
        return [f"{a}/{b}" for a in self.segmenters for b in self.strategies]

    def reset(self) -> None:
        for metric in self.metrics.values():
            metric.reset()

    def update(
        self, output: PipelineOutput, segmenters: Sequence[Segmenter], gt_masks: Tensor
    ) -> None:
        """Run the clicker on a batch the pipeline has segmented (its `states` and results),
        with each of `segmenters` that this scoring was made for."""
        rows = gt_masks.flatten(1).any(1).nonzero()[:, 0]
        if len(rows) == 0:
            return
        gt = gt_masks[rows].bool()
        for segmenter in (s for s in segmenters if s.name in self.segmenters):
            state = output.states[segmenter.name]
            if len(rows) < len(gt_masks):
                state = segmenter.select(state, rows)
            curves = click_ious(segmenter, state, gt, MAX_CLICKS, always_clicks=MIOU_CLICKS)
            self.metrics[segmenter.name].update(curves)
            for strategy in self.strategies:
                key = f"{segmenter.name}/{strategy}"
                result = output.results[key]
                curves = click_ious(
                    segmenter, state, gt, MAX_CLICKS,
                    stop_iou=START_THRESHOLD,
                    always_clicks=0,
                    initial=_rows_of(result.prompts, rows),
                    heatmaps=result.heatmaps[rows],
                )  # fmt: skip
                self.metrics[key].update(curves)

    def annotate(self, rows: list[dict[str, Any]], prefix: str) -> tuple[dict, dict[str, float]]:
        """Per segmenter its click scores, and scalars to log; adds `worth_clicks` to every row
        with an IoU and `noc90_from_start` to each no-click strategy's row (in place)."""
        clicks = {name: self.metrics[name].compute() for name in self.segmenters}
        started = {key: self.metrics[key].compute() for key in self._started_keys()}
        scalars = {
            f"{prefix}/{name}/clicks/{metric}": value
            for name, scores in clicks.items()
            for metric, value in scores.items()
            if metric != "noc90_from_start" and not math.isnan(value)
        }
        for row in rows:
            if row["segmenter"] not in clicks:
                continue  # a segmenter the clicker does not drive
            curve = [clicks[row["segmenter"]][f"miou_{k}"] for k in range(1, MIOU_CLICKS + 1)]
            iou = row.get("iou")
            scorable = iou is not None and not any(math.isnan(v) for v in [iou, *curve])
            row["worth_clicks"] = worth_clicks(iou, curve) if scorable else None
            key = f"{row['segmenter']}/{row['strategy']}"
            if key in started:
                value = started[key]["noc90_from_start"]
                row["noc90_from_start"] = None if math.isnan(value) else value
            for metric in ("worth_clicks", "noc90_from_start"):
                if row.get(metric) is not None:
                    scalars[f"{prefix}/{key}/{metric}"] = row[metric]
        summary = {
            name: {metric: _finite_or_none(v) for metric, v in scores.items()}
            for name, scores in clicks.items()
        }
        for scores in summary.values():
            scores.pop("noc90_from_start")  # clicks from nothing have no start
        return summary, scalars


def _rows_of(prompts: Prompts, rows: Tensor) -> Prompts:
    """The prompt sets of images `rows`."""
    boxes = None if prompts.boxes is None else prompts.boxes[rows]
    return Prompts(prompts.points[rows], prompts.labels[rows], boxes)


def _finite_or_none(value: float) -> float | None:
    return None if math.isnan(value) else value
