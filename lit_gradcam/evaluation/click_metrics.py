"""Interactive-segmentation scores read from the IoU curves of `click_ious`.

`ClickMetrics` is a torchmetrics `Metric` (every state a sum, so it syncs under DDP) giving
the field's two numbers: mIoU after k clicks and NoC@85 / NoC@90, the number of clicks an image
needs to reach that IoU (capped at `max_clicks`, 20 by convention, when it never does).
`worth_clicks` turns a no-click strategy's mIoU into the number of clicks it is worth.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import Tensor
from torchmetrics import Metric

#: IoU thresholds of the NoC scores, keyed noc85 and noc90.
NOC_THRESHOLDS = (0.85, 0.90)
#: Threshold of the NoC counted from the no-click start (`noc90_from_start`).
START_THRESHOLD = 0.90


class ClickMetrics(Metric):
    """mIoU@1..`miou_clicks`, NoC@85, NoC@90 and NoC@90 from the start, over IoU curves.

    `update` takes curves (B, max_clicks + 1) as `click_ious` returns them: column 0 the IoU of
    a no-click strategy's mask (NaN when the clicks started from nothing), column k the IoU
    after k clicks. A curve may end early (NaN after its last value) when its image stopped
    clicking: its later IoUs are taken as its last one, the mask the user kept. So that no NoC
    is left unknown, a curve may end early only at an IoU of at least 0.90 (run `click_ious`
    with `stop_iou >= 0.90`); ValueError otherwise.

    `compute` returns floats keyed `miou_1` .. `miou_{miou_clicks}`, `noc85`, `noc90` (NoC is
    the first k in 1..max_clicks whose IoU reaches the threshold, max_clicks when none does)
    and `noc90_from_start`: NoC@90 counting the start as click 0, so 0 where the no-click mask
    already reaches 0.90, averaged over the curves that have a start. Each value is NaN when it
    scored no curve (every one with no `update`, `noc90_from_start` with no started curve).
    """

    is_differentiable = False
    full_state_update = False

    def __init__(self, max_clicks: int = 20, miou_clicks: int = 5, **kwargs: object) -> None:
        super().__init__(**kwargs)
        if not 1 <= miou_clicks <= max_clicks:
            raise ValueError(
                f"need 1 <= miou_clicks <= max_clicks, got {miou_clicks=}, {max_clicks=}"
            )
        self.max_clicks = max_clicks
        self.miou_clicks = miou_clicks
        self.add_state(
            "miou_sum", torch.zeros(miou_clicks, dtype=torch.float64), dist_reduce_fx="sum"
        )
        self.add_state(
            "noc_sum", torch.zeros(len(NOC_THRESHOLDS), dtype=torch.long), dist_reduce_fx="sum"
        )
        self.add_state("noc_from_start_sum", torch.tensor(0), dist_reduce_fx="sum")
        self.add_state("num_curves", torch.tensor(0), dist_reduce_fx="sum")
        self.add_state("num_started", torch.tensor(0), dist_reduce_fx="sum")

    def update(self, curves: Tensor) -> None:
        if curves.ndim != 2 or curves.shape[1] != self.max_clicks + 1:
            raise ValueError(
                f"curves must be (B, {self.max_clicks + 1}), got {tuple(curves.shape)}"
            )
        curves = curves.double()
        clicked = _carried_forward(curves)[:, 1:]
        self.miou_sum += clicked[:, : self.miou_clicks].sum(0)
        nocs = torch.stack([_noc(clicked, threshold) for threshold in NOC_THRESHOLDS], 1)
        self.noc_sum += nocs.sum(0)
        started = ~curves[:, 0].isnan()
        from_start = _noc(clicked, START_THRESHOLD).masked_fill(curves[:, 0] >= START_THRESHOLD, 0)
        self.noc_from_start_sum += from_start[started].sum()
        self.num_curves += len(curves)
        self.num_started += started.sum()

    def compute(self) -> dict[str, float]:
        values = {
            f"miou_{k}": _ratio(self.miou_sum[k - 1], self.num_curves)
            for k in range(1, self.miou_clicks + 1)
        }
        for threshold, noc_sum in zip(NOC_THRESHOLDS, self.noc_sum, strict=True):
            values[f"noc{round(threshold * 100)}"] = _ratio(noc_sum, self.num_curves)
        values[f"noc{round(START_THRESHOLD * 100)}_from_start"] = _ratio(
            self.noc_from_start_sum, self.num_started
        )
        return values


def _carried_forward(curves: Tensor) -> Tensor:
    """`curves` with each NaN after a curve's first value replaced by the value before it;
    ValueError for a curve without values, with a gap, or ending early below 0.90."""
    present = ~curves.isnan()
    if not present[:, :2].any(1).all():
        raise ValueError("every curve needs an IoU at click 0 or click 1")
    if (present[:, 2:] & ~present[:, 1:-1]).any():
        raise ValueError("a curve has a NaN between two IoUs: NaN may only end a curve")
    columns = list(curves.unbind(1))
    for k in range(1, len(columns)):
        columns[k] = torch.where(columns[k].isnan(), columns[k - 1], columns[k])
    if (~present[:, -1] & (columns[-1] < max(NOC_THRESHOLDS))).any():
        raise ValueError(
            f"a curve ends before its last click below IoU {max(NOC_THRESHOLDS)}, so its NoC is "
            f"unknown: run click_ious with stop_iou >= {max(NOC_THRESHOLDS)}"
        )
    return torch.stack(columns, 1)


def _noc(clicked: Tensor, threshold: float) -> Tensor:
    """(B,) long: the first click count (1-based column of `clicked`) whose IoU reaches
    `threshold`, the number of columns when none does."""
    reached = clicked >= threshold
    first = reached.long().argmax(1) + 1
    return torch.where(reached.any(1), first, torch.full_like(first, clicked.shape[1]))


def _ratio(total: Tensor, count: Tensor) -> float:
    """total / count, NaN when nothing was counted."""
    return math.nan if count == 0 else float(total.double() / count)


def worth_clicks(no_click_miou: float, miou_at_clicks: Sequence[float]) -> float | None:
    """How many clicks a no-click strategy's mIoU is worth on the clicker's curve.

    The curve is mIoU@0 = 0, then `miou_at_clicks` = mIoU@1..K, joined by straight lines
    between consecutive click counts. The answer is the first (smallest) k, fractional, at
    which the curve equals `no_click_miou`: 0 when that is 0 or less, None when the curve
    never reaches it within K clicks (printed ">K"). On a curve that dips, the first crossing
    counts. ValueError for NaN values or an empty curve.
    """
    curve = [0.0, *miou_at_clicks]
    if len(curve) == 1 or any(math.isnan(value) for value in [no_click_miou, *curve]):
        raise ValueError(f"need a non-empty curve and no NaN, got {no_click_miou=}, {curve=}")
    if no_click_miou <= 0:
        return 0.0
    for k in range(1, len(curve)):
        if curve[k] >= no_click_miou:  # curve[k - 1] < no_click_miou, k being the first
            low, high = curve[k - 1], curve[k]
            return k - 1 + (no_click_miou - low) / (high - low)
    return None
