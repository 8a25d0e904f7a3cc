"""Per-object strategies: several objects of one class in one heatmap, a segmenter call each.

A class's CAM lights every object of that class, so each hot connected component is read as an
object, and a component with several distant peaks as several (S2C prompts SAM at every CAM peak
of a class the same way). `PerObject` hands each component's heat to a single-object strategy
and unites the masks; `GroundTruthObjects` is the oracle: each connected component of the
class's ground truth, prompted where an interactive segmentation benchmark places its first
click (the pixel farthest from the object's border).
On single-object data both run on one object: the heaviest component.
"""

from __future__ import annotations

from typing import Any

import cv2
import numpy as np
import torch
from torch import Tensor

from lit_gradcam.cam.spec import CamSpec
from lit_gradcam.data.backgrounds import dataset_scale
from lit_gradcam.errors import ConfigError
from lit_gradcam.prompt_types import FOREGROUND, Prompts
from lit_gradcam.prompts.base import ObjectSegmentation, PromptStrategy, foreground_points
from lit_gradcam.prompts.consensus import CamConsensus
from lit_gradcam.prompts.geometry import (
    connected_components,
    mask_boxes,
    ranked_components,
    relative_region,
    split_at_peaks,
)
from lit_gradcam.segmenters.base import Segmenter


def _check_objects(max_objects: int, connectivity: int) -> None:
    if max_objects < 1:
        raise ConfigError(f"max_objects must be at least 1, got {max_objects}")
    if connectivity not in (4, 8):
        raise ConfigError(f"connectivity must be 4 or 8, got {connectivity}")


def _first_foreground(prompts: Prompts) -> tuple[Tensor, Tensor]:
    """(N, 2) each prompt set's first foreground point and (N,) whether it has one."""
    is_foreground = prompts.labels == FOREGROUND
    if is_foreground.shape[1] == 0:
        empty = prompts.points.new_zeros(len(prompts.points), 2)
        return empty, is_foreground.new_zeros(len(prompts.points))
    first = is_foreground.float().argmax(1)
    points = prompts.points[torch.arange(len(first), device=first.device), first]
    return points, is_foreground.any(1)


def _united(
    rows: Tensor, prompts: Prompts, masks: Tensor, count: int, slots: int
) -> ObjectSegmentation:
    """Object results of `rows` (Q, 2) = (heatmap, slot), gathered per heatmap."""
    height, width = masks.shape[-2:]
    device = rows.device
    union = torch.zeros(count, height * width, device=device)
    union.index_add_(0, rows[:, 0], masks.to(device).flatten(1).float())
    points = torch.zeros(count, slots, 2, device=device)
    valid = torch.zeros(count, slots, dtype=torch.bool, device=device)
    first, has = _first_foreground(prompts.to(device))
    points[rows[:, 0], rows[:, 1]] = first
    valid[rows[:, 0], rows[:, 1]] = has
    return ObjectSegmentation(points, valid, (union > 0).view(count, height, width))


def no_objects(heatmaps: Tensor) -> ObjectSegmentation:
    """No object in any of `heatmaps` (P, H, W): no point, empty masks."""
    count = len(heatmaps)
    return ObjectSegmentation(
        heatmaps.new_zeros(count, 0, 2),
        torch.zeros(count, 0, dtype=torch.bool, device=heatmaps.device),
        torch.zeros_like(heatmaps, dtype=torch.bool),
    )


#: `PerObject`'s default peak separation, in px of a 48x64 image (chosen on validation splits of
#: folders of several objects: docs/results.md).
SEPARATION = 6.0


class PerObject(PromptStrategy):
    """Each hot component of a heatmap is an object, segmented by `strategy` on its own heat.

    Components are the `connectivity`-connected pixels at or above `threshold` x the map's
    maximum; a component holding several peaks (`split_at_peaks`: each the hottest pixel
    within `separation` px, reaching `min_peak` x the map's maximum) is split among them, so
    that touching objects of one class are several objects. They are ranked by summed heat; the
    `max_objects` heaviest whose own peak reaches `min_peak` x the map's maximum are objects (the
    default chosen on the generated multi-object validation split: a weaker blob is more often
    part of another object than an object). `separation` is given for the dataset's images
    (shorter side 48 px) and scales with the heatmaps' shorter side, as GrabCut's radii do;
    0 = no split.
    `strategy` (default `CamConsensus`) sees each object's heat alone (zero outside its
    component), so its candidates and its vote stay on that object; the masks of a heatmap's
    objects are united.
    """

    def __init__(
        self,
        strategy: PromptStrategy | None = None,
        threshold: float = 0.5,
        min_peak: float = 0.5,
        max_objects: int = 3,
        connectivity: int = 8,
        separation: float = SEPARATION,
        name: str | None = None,
        cam: CamSpec | None = None,
    ) -> None:
        super().__init__(name=name, cam=cam)
        _check_objects(max_objects, connectivity)
        if separation < 0:
            raise ConfigError(f"separation must be >= 0, got {separation}")
        self.separation = separation
        self.strategy = strategy or CamConsensus()
        self.threshold, self.min_peak = threshold, min_peak
        self.max_objects, self.connectivity = max_objects, connectivity

    @property
    def uses_ground_truth(self) -> bool:  # type: ignore[override]
        return self.strategy.uses_ground_truth

    def objects(self, heatmaps: Tensor) -> tuple[Tensor, Tensor]:
        """Per heatmap, its objects' heat (P, M, H, W), heaviest first, and valid (P, M)."""
        region = relative_region(heatmaps, self.threshold)
        labels = connected_components(region, self.connectivity)
        peak = heatmaps.flatten(1).amax(1)[:, None]
        if self.separation:
            separation = self.separation * dataset_scale(*heatmaps.shape[-2:])
            labels = split_at_peaks(labels, heatmaps, separation, self.min_peak * peak[:, 0])
        components, valid = ranked_components(labels, heatmaps, self.max_objects)
        heat = heatmaps[:, None] * components
        valid = valid & (heat.flatten(2).amax(2) >= self.min_peak * peak)
        return heat, valid

    def prompts(self, heatmaps: Tensor, gt_masks: Tensor | None = None) -> Prompts:
        return self.strategy.prompts(self.objects(heatmaps)[0][:, 0], gt_masks)

    def segment(
        self, heatmaps: Tensor, segmenter: Segmenter, state: Any, gt_masks: Tensor | None = None
    ) -> tuple[Prompts, Tensor, Tensor]:
        """The heaviest object only: what a single-object image asks for."""
        return self.strategy.segment(self.objects(heatmaps)[0][:, 0], segmenter, state, gt_masks)

    def segment_objects(
        self, heatmaps: Tensor, segmenter: Segmenter, state: Any, gt_masks: Tensor | None = None
    ) -> ObjectSegmentation:
        heat, valid = self.objects(heatmaps)
        rows = valid.nonzero()
        if len(rows) == 0:
            return no_objects(heatmaps)
        gt = None if gt_masks is None else gt_masks[rows[:, 0]]
        chosen = segmenter.select(state, rows[:, 0])
        prompts, masks, _ = self.strategy.segment(
            heat[rows[:, 0], rows[:, 1]], segmenter, chosen, gt
        )
        return _united(rows, prompts, masks, len(heatmaps), heat.shape[1])


def inner_depth(region: np.ndarray) -> np.ndarray:
    """Euclidean distance of each pixel of `region` (H, W) bool to the nearest pixel outside it,
    pixels beyond the image border counting as outside (0 off the region).

    Equal distances are exactly equal: OpenCV's float32 distances can differ in their last bits
    at a tie, from run to run, which would move an argmax; the squared distance between pixels is
    an integer, so rounding it (exact for depths under a thousand pixels) restores the ties."""
    padded = np.pad(region.astype(np.uint8), 1)
    distance = cv2.distanceTransform(padded, cv2.DIST_L2, cv2.DIST_MASK_PRECISE)[1:-1, 1:-1]
    return np.sqrt(np.rint(distance.astype(np.float64) ** 2))


def innermost_points(masks: Tensor) -> Tensor:
    """(N, 2) per mask (N, H, W), the pixel farthest (Euclidean) from the mask's border, the
    image's edge counting as border; the first such pixel in raster order; the image centre for
    an empty mask."""
    points = []
    for mask in masks.cpu().numpy().astype(bool):
        distance = inner_depth(mask)
        if not mask.any():
            points.append((mask.shape[1] // 2, mask.shape[0] // 2))
            continue
        y, x = np.unravel_index(int(distance.argmax()), distance.shape)
        points.append((x, y))
    return torch.tensor(points, dtype=torch.float32, device=masks.device).view(-1, 2)


class GroundTruthObjects(PromptStrategy):
    """Oracle: each `connectivity`-connected component of a heatmap's ground truth (one class of
    one image) is an object, prompted at its innermost pixel (`innermost_points`), with its
    tight box when `box`; up to `max_objects` per heatmap, largest first. A ceiling, never a
    method. On single-object data: the largest component."""

    uses_ground_truth = True

    def __init__(
        self,
        box: bool = False,
        max_objects: int = 8,
        connectivity: int = 8,
        name: str | None = None,
        cam: CamSpec | None = None,
    ) -> None:
        super().__init__(name=name, cam=cam)
        _check_objects(max_objects, connectivity)
        self.box, self.max_objects, self.connectivity = box, max_objects, connectivity

    def objects(self, gt_masks: Tensor) -> tuple[Tensor, Tensor]:
        """Per mask, its components (P, M, H, W), largest first, and valid (P, M)."""
        masks = gt_masks.bool()
        labels = connected_components(masks, self.connectivity)
        return ranked_components(
            labels, torch.ones_like(masks, dtype=torch.float32), self.max_objects
        )

    def _object_prompts(self, components: Tensor) -> Prompts:
        """One object per mask (N, H, W): its innermost point, and its box when `box`."""
        boxes = mask_boxes(components) if self.box else None
        return foreground_points(innermost_points(components), boxes)

    def prompts(self, heatmaps: Tensor, gt_masks: Tensor | None = None) -> Prompts:
        if gt_masks is None:
            raise ValueError(f"{self.name} reads the ground-truth masks: pass gt_masks")
        return self._object_prompts(self.objects(gt_masks.to(heatmaps.device))[0][:, 0])

    def segment_objects(
        self, heatmaps: Tensor, segmenter: Segmenter, state: Any, gt_masks: Tensor | None = None
    ) -> ObjectSegmentation:
        if gt_masks is None:
            raise ValueError(f"{self.name} reads the ground-truth masks: pass gt_masks")
        components, valid = self.objects(gt_masks.to(heatmaps.device))
        rows = valid.nonzero()
        if len(rows) == 0:
            return no_objects(heatmaps)
        prompts = self._object_prompts(components[rows[:, 0], rows[:, 1]])
        masks, _ = segmenter.predict(segmenter.select(state, rows[:, 0]), prompts)
        return _united(rows, prompts, masks, len(heatmaps), components.shape[1])
