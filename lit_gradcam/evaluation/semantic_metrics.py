"""torchmetrics `Metric`s for the multi-class, multi-object path; every state syncs under DDP.

Maps are (B, H, W) integer class maps: 0 background, i in 1..C the i-th class, `IGNORED` (255)
a pixel no class is scored on (ground truth only). Points are (B, K, 2) float (x, y) pixels,
each with the class (B, K) it was placed for, 1..C, or 0 for padding (no point). A point sits on
the pixel at its rounded coordinates, clamped into the image, as in `lookup`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import Tensor, nn
from torchmetrics import Metric
from torchmetrics.classification import MulticlassJaccardIndex

from lit_gradcam.data.pixels import IGNORED
from lit_gradcam.evaluation.metrics import _ratio
from lit_gradcam.prompts.geometry import connected_components, lookup, round_to_pixel

#: `point_classes` value of a padding point.
NO_CLASS = 0


def _class_planes(gt_maps: Tensor, num_classes: int) -> Tensor:
    """(B, C, H, W) bool: plane c - 1 holds the GT pixels of class c (IGNORED is in none)."""
    classes = torch.arange(1, num_classes + 1, device=gt_maps.device)
    return gt_maps[:, None] == classes[None, :, None, None]


class ObjectHitRate(Metric):
    """Share of GT objects that hold a point of their class. NaN when no object was seen.

    An object is an 8-connected component of one class's pixels in the GT map; it is hit when
    the pixel of at least one point placed for its class belongs to it.
    """

    is_differentiable = False
    higher_is_better = True
    full_state_update = False

    def __init__(self, num_classes: int, **kwargs: object) -> None:
        super().__init__(**kwargs)
        self.num_classes = num_classes
        self.add_state("hits", torch.tensor(0), dist_reduce_fx="sum")
        self.add_state("num_objects", torch.tensor(0), dist_reduce_fx="sum")

    def update(self, gt_maps: Tensor, points: Tensor, point_classes: Tensor) -> None:
        batch, height, width = gt_maps.shape
        planes = _class_planes(gt_maps, self.num_classes)
        labels = connected_components(planes.flatten(0, 1), connectivity=8)
        # One row per image, C planes of H*W labels: a component's label is the raster index of
        # its first pixel, so each object has exactly one pixel whose label is its own index.
        size = height * width
        labels = labels.view(batch, self.num_classes * size)
        own = torch.arange(size, device=labels.device).repeat(self.num_classes)
        self.num_objects += (labels == own).sum()
        x, y = round_to_pixel(points, height, width)
        plane = (point_classes - 1).clamp_min(0)
        hit = labels.gather(1, plane * size + y * width + x)
        real = (point_classes != NO_CLASS) & (hit >= 0)
        # Mark each hit object once (misses and padding go to a spare last slot), then count.
        slots = torch.where(real, plane * size + hit, labels.shape[1])
        marks = torch.zeros(batch, labels.shape[1] + 1, dtype=torch.bool, device=labels.device)
        self.hits += marks.scatter_(1, slots, True)[:, :-1].sum()

    def compute(self) -> Tensor:
        return _ratio(self.hits, self.num_objects)


class StrayPointRate(Metric):
    """Share of points whose pixel is not of their class in the GT map (background, another
    class or IGNORED). Padding is not counted. NaN when no point was seen."""

    is_differentiable = False
    higher_is_better = False
    full_state_update = False

    def __init__(self, **kwargs: object) -> None:
        super().__init__(**kwargs)
        self.add_state("stray", torch.tensor(0), dist_reduce_fx="sum")
        self.add_state("num_points", torch.tensor(0), dist_reduce_fx="sum")

    def update(self, gt_maps: Tensor, points: Tensor, point_classes: Tensor) -> None:
        real = point_classes != NO_CLASS
        stray = lookup(gt_maps, points) != point_classes
        self.stray += (stray & real).sum()
        self.num_points += real.sum()

    def compute(self) -> Tensor:
        return _ratio(self.stray, self.num_points)


def _key(name: str) -> str:
    """A class name as a result key: "/" separates the levels of a logged name, so it is "_"."""
    return f"iou_{name.replace('/', '_')}"


class SemanticMetrics(nn.Module):
    """Every metric of the multi-class path for one prediction source.

    `compute()` returns floats keyed:

    - `iou_background`, `iou_<class>`: dataset-level (VOC) IoU of each class over one confusion
      matrix of all pixels, IGNORED GT pixels (and the predictions on them) left out; NaN for a
      class in neither the GT nor the prediction of any scored pixel. A class name's "/" becomes
      "_" in its key, as "/" separates the levels of a logged name.
    - `miou`: the mean of those IoUs over the classes that have one (NaN if none has).
    - `object_hit_rate`: see `ObjectHitRate`; `stray_point_rate`: see `StrayPointRate`.

    Counts are not metrics and stay out of that dict: read the synced `num_objects` and
    `num_points` properties. Under DDP, call `compute()` and the properties on every process
    (they gather).
    """

    def __init__(self, classes: Sequence[str]) -> None:
        super().__init__()
        self.classes = tuple(classes)
        if not self.classes:
            raise ValueError("SemanticMetrics needs at least one class")
        #: The per-class IoU keys of `compute()`, background first, in class order.
        self.keys = ("iou_background", *(_key(name) for name in self.classes))
        if len(set(self.keys)) < len(self.keys):
            raise ValueError(
                f"classes {list(self.classes)} give clashing result keys {self.keys} (a class "
                "may not be named 'background', and '/' counts as '_')"
            )
        num_classes = len(self.classes)
        # validate_args=False: `update` checks the values itself, range included.
        self.iou = MulticlassJaccardIndex(
            num_classes=num_classes + 1,
            average="none",
            ignore_index=IGNORED,
            zero_division=math.nan,
            validate_args=False,
        )
        self.object_hit_rate = ObjectHitRate(num_classes)
        self.stray_point_rate = StrayPointRate()

    def update(
        self, pred_maps: Tensor, gt_maps: Tensor, points: Tensor, point_classes: Tensor
    ) -> None:
        """Predicted and GT class maps (B, H, W), points (B, K, 2) and their classes (B, K)."""
        self._check(pred_maps, gt_maps, points, point_classes)
        pred_maps, gt_maps, point_classes = pred_maps.long(), gt_maps.long(), point_classes.long()
        self.iou.update(pred_maps, gt_maps)
        self.object_hit_rate.update(gt_maps, points, point_classes)
        self.stray_point_rate.update(gt_maps, points, point_classes)

    def compute(self) -> dict[str, float]:
        per_class = self.iou.compute()
        values = {
            "miou": per_class.nanmean(),
            **dict(zip(self.keys, per_class, strict=True)),
            "object_hit_rate": self.object_hit_rate.compute(),
            "stray_point_rate": self.stray_point_rate.compute(),
        }
        return {name: float(value) for name, value in values.items()}

    def reset(self) -> None:
        for metric in self.children():
            metric.reset()

    @property
    def num_objects(self) -> int:
        """GT objects seen (all processes)."""
        return self._synced_count(self.object_hit_rate, "num_objects")

    @property
    def num_points(self) -> int:
        """Points seen (all processes), padding not counted."""
        return self._synced_count(self.stray_point_rate, "num_points")

    @staticmethod
    def _synced_count(metric: Metric, state: str) -> int:
        with metric.sync_context(dist_sync_fn=metric.dist_sync_fn):
            return int(getattr(metric, state))

    def _check(
        self, pred_maps: Tensor, gt_maps: Tensor, points: Tensor, point_classes: Tensor
    ) -> None:
        """ValueError for mismatched shapes or values outside the class range: out-of-range
        values would silently land in the wrong cells of the confusion matrix."""
        num_classes = len(self.classes)
        if pred_maps.ndim != 3 or pred_maps.shape != gt_maps.shape:
            raise ValueError(
                f"pred_maps {tuple(pred_maps.shape)} and gt_maps {tuple(gt_maps.shape)} must be "
                "the same (B, H, W)"
            )
        batch = gt_maps.shape[0]
        if points.ndim != 3 or points.shape[::2] != (batch, 2):
            raise ValueError(f"points {tuple(points.shape)} must be (B={batch}, K, 2)")
        if point_classes.shape != points.shape[:2]:
            raise ValueError(
                f"point_classes {tuple(point_classes.shape)} must be {tuple(points.shape[:2])}"
            )
        valid_gt = (gt_maps <= num_classes) | (gt_maps == IGNORED)
        checks = {
            f"pred_maps (0..{num_classes})": (pred_maps >= 0) & (pred_maps <= num_classes),
            f"gt_maps (0..{num_classes} or {IGNORED})": (gt_maps >= 0) & valid_gt,
            f"point_classes (0..{num_classes})": (point_classes >= 0)
            & (point_classes <= num_classes),
        }
        for name, ok in checks.items():
            if not bool(ok.all()):
                raise ValueError(f"{name} holds values outside its range")
