"""torchmetrics `Metric`s for prompted segmentation; every state is a sum, so all sync under DDP.

Images whose ground-truth mask is empty have no IoU, no inside and no centre of mass: every
metric here counts them apart (`MeanIoU.num_empty_gt`) and leaves them out, so each metric
scores the same set of images and nothing is ever divided by zero. Masks are (B, H, W),
bool or 0/1; points follow `Prompts`: (x, y) pixels, label 1 / 0, padding (-1) ignored.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn
from torchmetrics import Metric
from torchmetrics.classification import BinaryJaccardIndex

from lit_gradcam.prompt_types import BACKGROUND, FOREGROUND, Prompts
from lit_gradcam.prompts.geometry import lookup, weighted_centroid


def _non_empty(gt_masks: Tensor) -> Tensor:
    """(B,) True where the GT mask has at least one pixel."""
    return gt_masks.flatten(1).any(1)


def _ratio(numerator: Tensor, denominator: Tensor) -> Tensor:
    """numerator / denominator as a float64 scalar, NaN when nothing was counted."""
    if denominator == 0:
        return torch.tensor(math.nan, dtype=torch.float64, device=numerator.device)
    return numerator.double() / denominator


class MeanIoU(Metric):
    """IoU of predicted vs GT mask per image, averaged over images (the reference definition).

    Images with an empty GT mask are excluded and counted in `num_empty_gt`; `num_scored`
    counts the others. NaN when no image was scored.
    """

    is_differentiable = False
    higher_is_better = True
    full_state_update = False

    def __init__(self, **kwargs: object) -> None:
        super().__init__(**kwargs)
        self.add_state("iou_sum", torch.tensor(0.0, dtype=torch.float64), dist_reduce_fx="sum")
        self.add_state("num_scored", torch.tensor(0), dist_reduce_fx="sum")
        self.add_state("num_empty_gt", torch.tensor(0), dist_reduce_fx="sum")

    def update(self, preds: Tensor, target: Tensor) -> None:
        preds, target = preds.flatten(1).bool(), target.flatten(1).bool()
        keep = target.any(1)
        intersection = (preds & target)[keep].sum(1)
        union = (preds | target)[keep].sum(1)  # >= 1 where the GT is non-empty
        self.iou_sum += (intersection.double() / union).sum()
        self.num_scored += keep.sum()
        self.num_empty_gt += (~keep).sum()

    def compute(self) -> Tensor:
        return _ratio(self.iou_sum, self.num_scored)


class PointHitRate(Metric):
    """Share of the points labelled `label` (1 foreground, 0 background) whose nearest pixel
    (clamped into the image) lies in the GT mask. NaN when no such point was seen."""

    is_differentiable = False
    full_state_update = False

    def __init__(self, label: int = FOREGROUND, **kwargs: object) -> None:
        super().__init__(**kwargs)
        self.label = label
        self.add_state("hits", torch.tensor(0), dist_reduce_fx="sum")
        self.add_state("total", torch.tensor(0), dist_reduce_fx="sum")

    def update(self, prompts: Prompts, target: Tensor) -> None:
        target = target.bool()
        counted = (prompts.labels == self.label) & _non_empty(target)[:, None]
        inside = lookup(target, prompts.points)
        self.hits += (inside & counted).sum()
        self.total += counted.sum()

    def compute(self) -> Tensor:
        return _ratio(self.hits, self.total)

    @property
    def higher_is_better(self) -> bool:  # type: ignore[override]
        """Foreground points should land inside the mask, background points outside."""
        return self.label == FOREGROUND


class PointDistance(Metric):
    """Euclidean distance in px from each point labelled `label` to the GT mask's centre of
    mass, averaged over the image's points, then over images. Images without such points are
    excluded. NaN when no image was scored."""

    is_differentiable = False
    higher_is_better = False
    full_state_update = False

    def __init__(self, label: int = FOREGROUND, **kwargs: object) -> None:
        super().__init__(**kwargs)
        self.label = label
        self.add_state("distance_sum", torch.tensor(0.0, dtype=torch.float64), dist_reduce_fx="sum")
        self.add_state("num_scored", torch.tensor(0), dist_reduce_fx="sum")

    def update(self, prompts: Prompts, target: Tensor) -> None:
        target = target.bool()
        centre = weighted_centroid(target.float())
        distance = (prompts.points.float() - centre[:, None]).norm(dim=-1).double()
        chosen = prompts.labels == self.label
        count = chosen.sum(1)
        keep = (count > 0) & _non_empty(target)
        per_image = (distance * chosen).sum(1)[keep] / count[keep]
        self.distance_sum += per_image.sum()
        self.num_scored += keep.sum()

    def compute(self) -> Tensor:
        return _ratio(self.distance_sum, self.num_scored)


class SegmentationMetrics(nn.Module):
    """Every metric of one (segmenter, strategy) pair.

    `compute()` returns floats keyed iou, iou_pixel, hit_rate_fg, distance_fg, hit_rate_fg_cam,
    distance_fg_cam, plus hit_rate_bg and distance_bg only when background points were scored
    (so strategies without them log no bg metrics). The `_cam` pair scores the foreground
    points the heatmap gave before the segmenter took part: for a strategy that consults the
    segmenter this separates the heatmap's merit from the segmenter's; for every other strategy
    they are its final points, so both pairs are equal. `iou_pixel` is the dataset-level
    Jaccard index over the pixels of all images with a non-empty GT. A metric that scored
    nothing is NaN. Image counts are not metrics and stay out of that dict: read the synced
    `num_images` and `num_empty_gt` properties instead. Under DDP, call `compute()` and the
    properties on every process (they gather).
    """

    def __init__(self) -> None:
        super().__init__()
        self.iou = MeanIoU()
        self.iou_pixel = BinaryJaccardIndex(zero_division=math.nan)
        self.hit_rate_fg = PointHitRate(FOREGROUND)
        self.distance_fg = PointDistance(FOREGROUND)
        self.hit_rate_bg = PointHitRate(BACKGROUND)
        self.distance_bg = PointDistance(BACKGROUND)
        self.hit_rate_fg_cam = PointHitRate(FOREGROUND)
        self.distance_fg_cam = PointDistance(FOREGROUND)

    def update(
        self,
        prompts: Prompts,
        pred_masks: Tensor,
        gt_masks: Tensor,
        cam_prompts: Prompts | None = None,
    ) -> None:
        """Prompts of B images, predicted masks (B, H, W), GT masks (B, H, W) and the prompts
        the heatmap gave before the segmenter took part (default: `prompts`)."""
        gt_masks = gt_masks.bool()
        pred_masks = pred_masks.bool()
        self.iou.update(pred_masks, gt_masks)
        keep = _non_empty(gt_masks)
        self.iou_pixel.update(pred_masks[keep].long(), gt_masks[keep].long())
        for metric in (self.hit_rate_fg, self.distance_fg, self.hit_rate_bg, self.distance_bg):
            metric.update(prompts, gt_masks)
        cam_prompts = prompts if cam_prompts is None else cam_prompts
        self.hit_rate_fg_cam.update(cam_prompts, gt_masks)
        self.distance_fg_cam.update(cam_prompts, gt_masks)

    def compute(self) -> dict[str, float]:
        values = {
            "iou": self.iou.compute(),
            "iou_pixel": self.iou_pixel.compute(),
            "hit_rate_fg": self.hit_rate_fg.compute(),
            "distance_fg": self.distance_fg.compute(),
            "hit_rate_fg_cam": self.hit_rate_fg_cam.compute(),
            "distance_fg_cam": self.distance_fg_cam.compute(),
        }
        hit_rate_bg = self.hit_rate_bg.compute()
        if not hit_rate_bg.isnan():
            values["hit_rate_bg"] = hit_rate_bg
            values["distance_bg"] = self.distance_bg.compute()
        return {name: float(value) for name, value in values.items()}

    def reset(self) -> None:
        for metric in self.children():
            metric.reset()

    @property
    def num_images(self) -> int:
        """Images seen (all processes), empty-GT ones included."""
        return self._synced_count("num_scored") + self.num_empty_gt

    @property
    def num_empty_gt(self) -> int:
        """Images seen (all processes) whose GT mask was empty, hence left out of every metric."""
        return self._synced_count("num_empty_gt")

    def _synced_count(self, state: str) -> int:
        with self.iou.sync_context(dist_sync_fn=self.iou.dist_sync_fn):
            return int(getattr(self.iou, state))
