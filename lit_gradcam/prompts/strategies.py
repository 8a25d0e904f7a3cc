"""Prompt strategies: heatmaps (B, H, W) in [0, 1] -> `Prompts`, batched on the heatmaps' device.

The report's pipelines (`CenterPoint`, `TopKForeground`, `ForegroundBackground`), the oracles
`GroundTruthCentroid` and `GroundTruthBox`, and the strategies beyond the report
(`WeightedCentroid`, `PeakAndValley`, `CamBox`, and `CamConsensus`, which consults the
segmenter). Thresholds are relative to each image's maximum heat, so a map's scale never
matters; ties resolve toward the image centre.
"""

from __future__ import annotations

from typing import Literal

import torch
from torch import Tensor

from lit_gradcam.cam.spec import CamSpec
from lit_gradcam.cam.transform import InverseDistanceSmoothing
from lit_gradcam.errors import ConfigError
from lit_gradcam.prompt_types import BACKGROUND, FOREGROUND, PAD_LABEL, Prompts
from lit_gradcam.prompts.base import PromptStrategy, foreground_points
from lit_gradcam.prompts.consensus import CamConsensus
from lit_gradcam.prompts.geometry import (
    connected_components,
    distance_to,
    image_centre,
    mask_boxes,
    nms_peaks,
    ranked_components,
    relative_region,
    snap_to_mask,
    weighted_centroid,
)

__all__ = [
    "CamBox",
    "CamConsensus",
    "CenterPoint",
    "ForegroundBackground",
    "GroundTruthBox",
    "GroundTruthCentroid",
    "PeakAndValley",
    "TopKForeground",
    "WeightedCentroid",
]


def _labelled(valid: Tensor, label: int) -> Tensor:
    """(B, N) long labels: `label` where valid, padding elsewhere."""
    return torch.where(valid, label, PAD_LABEL).long()


class CenterPoint(PromptStrategy):
    """One foreground point at the image centre: the reference basic pipeline, heat ignored."""

    def prompts(self, heatmaps: Tensor, gt_masks: Tensor | None = None) -> Prompts:
        return foreground_points(image_centre(*heatmaps.shape, heatmaps.device))


class _Smoothed(PromptStrategy):
    """Base of the report's strategies, which read the inverse-distance smoothed heatmap."""

    def __init__(
        self,
        smoothing_radius: int | None,
        name: str | None,
        cam: CamSpec | None,
    ) -> None:
        super().__init__(name=name, cam=cam)
        self.smoothing = InverseDistanceSmoothing(smoothing_radius) if smoothing_radius else None

    def smooth(self, heatmaps: Tensor) -> Tensor:
        return heatmaps if self.smoothing is None else self.smoothing(heatmaps)


class TopKForeground(_Smoothed):
    """The report's OnlyForeground: the k hottest pixels of the smoothed heatmap as foreground.

    smoothing_radius: radius r of the report's inverse-distance kernel; 0 or None = raw heatmap.
    """

    def __init__(
        self,
        k: int = 1,
        smoothing_radius: int | None = 5,
        name: str | None = None,
        cam: CamSpec | None = None,
    ) -> None:
        super().__init__(smoothing_radius, name, cam)
        if k < 1:
            raise ConfigError(f"k must be at least 1, got {k}")
        self.k = k

    def prompts(self, heatmaps: Tensor, gt_masks: Tensor | None = None) -> Prompts:
        points, valid = nms_peaks(self.smooth(heatmaps), self.k)
        return Prompts(points, _labelled(valid, FOREGROUND))


class ForegroundBackground(_Smoothed):
    """The report's second pipeline: foreground points from the hot region, background points
    sampled among cold pixels far from the foreground points' centre.

    Foreground: the `num_foreground` hottest pixels of the smoothed map at or above
    `hot_threshold` x its maximum. Background: `num_background` pixels at or below
    `cold_threshold` x the maximum and at least `min_distance` px from the mean of the
    foreground points, drawn from a random priority map fixed by `seed` — the same for every
    image, so an image's points depend only on its heatmap, never on its batch or process.
    Where fewer pixels qualify, the missing background points are padding (none is forced onto
    a warm pixel).
    """

    def __init__(
        self,
        num_foreground: int = 1,
        num_background: int = 1,
        hot_threshold: float = 0.8,
        cold_threshold: float = 0.2,
        min_distance: float = 12.0,
        seed: int = 0,
        smoothing_radius: int | None = 5,
        name: str | None = None,
        cam: CamSpec | None = None,
    ) -> None:
        super().__init__(smoothing_radius, name, cam)
        if num_foreground < 1 or num_background < 0:
            raise ConfigError("need num_foreground >= 1 and num_background >= 0")
        self.num_foreground = num_foreground
        self.num_background = num_background
        self.hot_threshold = hot_threshold
        self.cold_threshold = cold_threshold
        self.min_distance = min_distance
        self.seed = seed

    def prompts(self, heatmaps: Tensor, gt_masks: Tensor | None = None) -> Prompts:
        smoothed = self.smooth(heatmaps)
        hot = relative_region(smoothed, self.hot_threshold)
        fg, fg_valid = nms_peaks(smoothed.masked_fill(~hot, -torch.inf), self.num_foreground)
        weight = fg_valid.float()[..., None]
        centre = (fg * weight).sum(1) / weight.sum(1)  # the hottest pixel is always hot
        peak = smoothed.flatten(1).amax(1)[:, None, None]
        cold = smoothed <= self.cold_threshold * peak
        far = distance_to(centre, *smoothed.shape[-2:]) >= self.min_distance
        priority = self._priority(*smoothed.shape[-2:]).to(smoothed.device).expand_as(smoothed)
        bg, bg_valid = nms_peaks(
            priority.masked_fill(~(cold & far), -torch.inf), self.num_background
        )
        return Prompts(
            torch.cat([fg, bg], 1),
            torch.cat([_labelled(fg_valid, FOREGROUND), _labelled(bg_valid, BACKGROUND)], 1),
        )

    def _priority(self, height: int, width: int) -> Tensor:
        """(1, H, W) uniform random priorities, drawn on the CPU so every device agrees."""
        generator = torch.Generator().manual_seed(self.seed)
        return torch.rand(1, height, width, generator=generator)


class GroundTruthCentroid(PromptStrategy):
    """Oracle: one point at the GT mask's centre of mass, snapped to the nearest mask pixel when
    the centre falls outside (rings, C shapes); the image centre for an empty mask. A ceiling,
    never a method."""

    uses_ground_truth = True

    def prompts(self, heatmaps: Tensor, gt_masks: Tensor | None = None) -> Prompts:
        if gt_masks is None:
            raise ValueError(f"{self.name} reads the ground-truth masks: pass gt_masks")
        masks = gt_masks.to(heatmaps.device).bool()
        return foreground_points(snap_to_mask(weighted_centroid(masks.float()), masks))


class GroundTruthBox(PromptStrategy):
    """Oracle: the GT mask's tight box, no point: SAM's box-prompt ceiling (a whole-image box
    for an empty mask). Scores masks only: with no point, its point metrics score nothing."""

    uses_ground_truth = True

    def prompts(self, heatmaps: Tensor, gt_masks: Tensor | None = None) -> Prompts:
        if gt_masks is None:
            raise ValueError(f"{self.name} reads the ground-truth masks: pass gt_masks")
        masks = gt_masks.to(heatmaps.device).bool()
        no_points = masks.new_zeros(len(masks), 0, 2, dtype=torch.float)
        no_labels = masks.new_zeros(len(masks), 0, dtype=torch.long)
        return Prompts(no_points, no_labels, mask_boxes(masks))


class WeightedCentroid(PromptStrategy):
    """One foreground point at the heat-weighted centre of the pixels at or above `threshold` x
    the image's maximum, snapped to the nearest such pixel if the centre falls outside them.
    Steadier than the argmax, which a CAM's receptive-field bias pulls off the object."""

    def __init__(
        self, threshold: float = 0.6, name: str | None = None, cam: CamSpec | None = None
    ) -> None:
        super().__init__(name=name, cam=cam)
        self.threshold = threshold

    def prompts(self, heatmaps: Tensor, gt_masks: Tensor | None = None) -> Prompts:
        region = relative_region(heatmaps, self.threshold)
        return foreground_points(snap_to_mask(weighted_centroid(heatmaps * region), region))


class PeakAndValley(PromptStrategy):
    """Foreground at the heat peak, background at the `num_background` coldest pixels, at least
    `background_spacing` px apart; among equally cold pixels the farthest from the peak wins."""

    def __init__(
        self,
        num_background: int = 1,
        background_spacing: float = 8.0,
        name: str | None = None,
        cam: CamSpec | None = None,
    ) -> None:
        super().__init__(name=name, cam=cam)
        self.num_background = num_background
        self.background_spacing = background_spacing

    def prompts(self, heatmaps: Tensor, gt_masks: Tensor | None = None) -> Prompts:
        peak, _ = nms_peaks(heatmaps, 1)
        far_first = -distance_to(peak[:, 0], *heatmaps.shape[-2:])
        valleys, valid = nms_peaks(
            -heatmaps, self.num_background, self.background_spacing, tie_cost=far_first
        )
        fg_labels = torch.full((len(heatmaps), 1), FOREGROUND, device=heatmaps.device)
        labels = torch.cat([fg_labels, _labelled(valid, BACKGROUND)], 1)
        return Prompts(torch.cat([peak, valleys], 1), labels)


class CamBox(PromptStrategy):
    """A box around the largest connected component of the pixels at or above `threshold` x the
    image's maximum, plus that component's peak as a foreground point.

    connectivity: 4 or 8. rank_by: "area" (pixel count) or "mass" (summed heat) decides
    "largest". margin: px added on each side of the box (clamped to the image).
    """

    def __init__(
        self,
        threshold: float = 0.5,
        connectivity: int = 8,
        rank_by: Literal["area", "mass"] = "area",
        margin: float = 0.0,
        name: str | None = None,
        cam: CamSpec | None = None,
    ) -> None:
        super().__init__(name=name, cam=cam)
        if rank_by not in ("area", "mass"):
            raise ConfigError(f"rank_by must be 'area' or 'mass', got {rank_by!r}")
        if connectivity not in (4, 8):
            raise ConfigError(f"connectivity must be 4 or 8, got {connectivity}")
        self.threshold = threshold
        self.connectivity = connectivity
        self.rank_by = rank_by
        self.margin = margin

    def prompts(self, heatmaps: Tensor, gt_masks: Tensor | None = None) -> Prompts:
        height, width = heatmaps.shape[-2:]
        labels = connected_components(relative_region(heatmaps, self.threshold), self.connectivity)
        weights = heatmaps if self.rank_by == "mass" else torch.ones_like(heatmaps)
        component = ranked_components(labels, weights, 1)[0][:, 0]
        peak, _ = nms_peaks(heatmaps.masked_fill(~component, -torch.inf), 1)
        grow = heatmaps.new_tensor([-self.margin, -self.margin, self.margin, self.margin])
        limit = heatmaps.new_tensor([width - 1, height - 1, width - 1, height - 1])
        boxes = (mask_boxes(component) + grow).clamp(min=torch.zeros_like(limit), max=limit)
        return foreground_points(peak[:, 0], boxes)
