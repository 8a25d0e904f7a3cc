"""A simulated user who corrects a segmenter's mask click by click (interactive segmentation).

`next_click` is the standard clicker of the field (RITM's, and SAM 2's
`sample_one_point_from_error_center` with `padding=True`, which it reproduces click for click):
it clicks the innermost pixel of the larger error region, foreground on a false negative and
background on a false positive. `click_ious` drives any `Segmenter` with it and records the IoU
after every click, the curve that `ClickMetrics` reads NoC and mIoU@k from.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import Tensor

from lit_gradcam.prompt_types import PAD_LABEL, Prompts
from lit_gradcam.prompts.objects import inner_depth
from lit_gradcam.segmenters.base import Segmenter


def next_click(gt_masks: Tensor, pred_masks: Tensor | None = None) -> tuple[Tensor, Tensor]:
    """The next click for each image of a batch: points (B, 2) float in (x, y) pixel order and
    labels (B,) long, on the device of `gt_masks`.

    gt_masks, pred_masks: (B, H, W) bool; pred None (no mask yet) counts as empty, so the first
    click is the object's innermost pixel (which, unlike the centroid, is always inside it).
    Depth is the Euclidean distance to the nearest pixel outside the error region, the image
    border counting as outside. The click goes to the deepest false-negative pixel (label 1)
    when it is strictly deeper than the deepest false-positive pixel, else to the latter
    (label 0); ties between pixels go to the first in row-major order. A mask without any
    error gets a background click at (0, 0), as SAM 2's clicker gives.
    """
    gt = gt_masks.bool().cpu().numpy()
    pred = np.zeros_like(gt) if pred_masks is None else pred_masks.bool().cpu().numpy()
    width = gt.shape[-1]
    points = torch.zeros(len(gt), 2)
    labels = torch.zeros(len(gt), dtype=torch.long)
    for index, (gt_mask, pred_mask) in enumerate(zip(gt, pred, strict=True)):
        fn_depth = inner_depth(gt_mask & ~pred_mask)
        fp_depth = inner_depth(~gt_mask & pred_mask)
        fn_at, fp_at = int(fn_depth.argmax()), int(fp_depth.argmax())
        positive = fn_depth.flat[fn_at] > fp_depth.flat[fp_at]
        y, x = divmod(fn_at if positive else fp_at, width)
        points[index] = torch.tensor([x, y], dtype=torch.float32)
        labels[index] = int(positive)
    return points.to(gt_masks.device), labels.to(gt_masks.device)


def click_ious(
    segmenter: Segmenter,
    state: Any,
    gt_masks: Tensor,
    max_clicks: int = 20,
    stop_iou: float = 0.90,
    always_clicks: int = 5,
    initial: Prompts | None = None,
    heatmaps: Tensor | None = None,
) -> Tensor:
    """IoU curves (B, max_clicks + 1) float64 of `segmenter` corrected by `next_click`.

    state: `segmenter.embed` of the B images; gt_masks: (B, H, W), none of them empty (an empty
    object has no IoU and nothing to click on: leave such images out, ValueError otherwise).
    Column 0 is the IoU of the mask that `initial` prompts give (a no-click strategy's prompts),
    NaN without them; column k is the IoU after k clicks. Each call gives the segmenter all the
    image's prompts so far: the initial points (and box) first, then the clicks in order, each
    computed from the last mask against the GT. Every image clicks `always_clicks` times; after
    that only images whose IoU is below `stop_iou` go on, up to `max_clicks`, and only those
    are segmented again (`segmenter.select`). An image whose mask equals its GT has nothing
    left to click on and stops at once. The columns after an image's last click are NaN.
    heatmaps: (B, H, W) the CAM `initial` came from, passed to every `predict` so that the
    column-0 mask is the no-click mask (`mask_choice: cam`).
    """
    if max_clicks < 1 or always_clicks < 0:
        raise ValueError(
            f"need max_clicks >= 1 and always_clicks >= 0, got {max_clicks=}, {always_clicks=}"
        )
    gt_masks = gt_masks.bool()
    if not gt_masks.flatten(1).any(1).all():
        raise ValueError("click_ious needs non-empty GT masks: leave empty-GT images out")
    batch, device = gt_masks.shape[0], gt_masks.device
    ious = torch.full((batch, max_clicks + 1), torch.nan, dtype=torch.float64, device=device)
    pred_masks = torch.zeros_like(gt_masks)
    if initial is not None:
        pred_masks = segmenter.predict(state, initial, heatmaps)[0].bool()
        ious[:, 0] = _iou(pred_masks, gt_masks)
    active = torch.ones(batch, dtype=torch.bool, device=device)
    click_points = torch.zeros(batch, max_clicks, 2, device=device)
    click_labels = torch.zeros(batch, max_clicks, dtype=torch.long, device=device)
    for clicks in range(1, max_clicks + 1):
        if clicks > always_clicks:
            active &= ~(ious[:, clicks - 1] >= stop_iou)  # NaN (no mask yet) goes on
        active &= (pred_masks != gt_masks).flatten(1).any(1)
        rows = active.nonzero()[:, 0]
        if len(rows) == 0:
            break
        points, labels = next_click(gt_masks[rows], pred_masks[rows])
        click_points[rows, clicks - 1] = points
        click_labels[rows, clicks - 1] = labels
        prompts = _accumulated(
            initial, click_points[rows, :clicks], click_labels[rows, :clicks], rows
        )
        rows_state = state if len(rows) == batch else segmenter.select(state, rows)
        rows_heat = None if heatmaps is None else heatmaps[rows]
        masks = segmenter.predict(rows_state, prompts, rows_heat)[0].bool()
        pred_masks[rows] = masks
        ious[rows, clicks] = _iou(masks, gt_masks[rows])
    return ious


def _accumulated(
    initial: Prompts | None, click_points: Tensor, click_labels: Tensor, rows: Tensor
) -> Prompts:
    """The prompts of images `rows` given their clicks (len(rows), K, 2) and (len(rows), K):
    the initial points (padding dropped) followed by the clicks, padded to the longest with
    PAD_LABEL, and the initial box if any."""
    points = list(click_points)
    labels = list(click_labels)
    if initial is None:
        return Prompts.from_lists(points, labels)
    for position, row in enumerate(rows.tolist()):
        real = initial.labels[row] != PAD_LABEL
        points[position] = torch.cat([initial.points[row, real].float(), points[position]])
        labels[position] = torch.cat([initial.labels[row, real], labels[position]])
    boxes = None if initial.boxes is None else initial.boxes[rows]
    return Prompts.from_lists(points, labels, boxes)


def _iou(pred_masks: Tensor, gt_masks: Tensor) -> Tensor:
    """(B,) float64 IoU of bool masks (B, H, W) whose GT is non-empty."""
    intersection = (pred_masks & gt_masks).flatten(1).sum(1)
    union = (pred_masks | gt_masks).flatten(1).sum(1)
    return intersection.double() / union
