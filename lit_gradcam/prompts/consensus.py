"""`CamConsensus`: segment several heatmap-derived candidates, keep the mask the heatmap backs.

A single point read off a CAM misses the object in a sizeable share of images, but a handful
of candidates (peaks, component centroids, the weighted centroid) usually contains a hit. The
segmenter is cheap once the image is embedded, so every candidate is segmented on the shared
state and the masks vote: the one that agrees best with the heatmap wins.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from lit_gradcam.cam.spec import CamSpec
from lit_gradcam.prompt_types import Prompts
from lit_gradcam.prompts.base import PromptStrategy, foreground_points
from lit_gradcam.prompts.geometry import (
    connected_components,
    mask_boxes,
    nms_peaks,
    ranked_components,
    relative_region,
    snap_to_mask,
    weighted_centroid,
)
from lit_gradcam.segmenters.base import Segmenter


class CamConsensus(PromptStrategy):
    """Best of several one-point candidates, judged by the masks they produce.

    Candidates per image, in this order: the weighted centroid of the hot region (pixels at or
    above `threshold` x the maximum), the `num_peaks` highest peaks at least `peak_distance` px
    apart, and the centroids of the `num_components` heaviest hot components (`connectivity` 4
    or 8), each snapped into its region. An image with fewer candidates repeats its first.

    Each candidate is segmented with `segmenter.predict` on the shared state (never `embed`)
    and its mask scored as
        soft IoU(mask, hot heat) + segmenter_score_weight * segmenter score,
    with heat rescaled to the image's maximum and zeroed below the threshold for the IoU. The
    soft IoU punishes masks that leak into cold pixels as much as masks that miss hot ones.
    The best mask wins (ties: the earlier candidate).
    refine: a second `predict` from the winning mask's centre of mass (snapped into it), whose
    prompt and mask are returned (PerSAM's cascade); the winner's point sits where the CAM was
    hot, often beside the object, the mask's centre inside it. Off: the winner's point, mask
    and score are returned as they are.
    refine_box: also prompt the second pass with the winning mask's box. Off by default: on the
    validation split a box made GrabCut keep the winner's leaks.
    """

    def __init__(
        self,
        threshold: float = 0.6,
        num_peaks: int = 1,
        peak_distance: float = 6.0,
        num_components: int = 0,
        connectivity: int = 8,
        segmenter_score_weight: float = 0.25,
        refine: bool = True,
        refine_box: bool = False,
        name: str | None = None,
        cam: CamSpec | None = None,
    ) -> None:
        super().__init__(name=name, cam=cam)
        self.threshold = threshold
        self.num_peaks = num_peaks
        self.peak_distance = peak_distance
        self.num_components = num_components
        self.connectivity = connectivity
        self.segmenter_score_weight = segmenter_score_weight
        self.refine = refine
        self.refine_box = refine_box

    def candidates(self, heatmaps: Tensor) -> tuple[Tensor, Tensor]:
        """Candidate points (B, C, 2) and valid (B, C); invalid slots hold the first candidate."""
        region = relative_region(heatmaps, self.threshold)
        centroid = snap_to_mask(weighted_centroid(heatmaps * region), region)
        peaks, peaks_valid = nms_peaks(heatmaps, self.num_peaks, self.peak_distance)
        if self.num_components:  # labelling costs a pass over every map: only when asked
            labels = connected_components(region, self.connectivity)
            components, components_valid = ranked_components(labels, heatmaps, self.num_components)
        else:
            components_valid = peaks_valid.new_zeros(len(heatmaps), 0)
            components = region.new_zeros(len(heatmaps), 0, *region.shape[1:])
        centres = [snap_to_mask(weighted_centroid(heatmaps * c), c) for c in components.unbind(1)]
        points = torch.cat([centroid[:, None], peaks, *(c[:, None] for c in centres)], 1)
        first = torch.ones(len(heatmaps), 1, dtype=torch.bool, device=heatmaps.device)
        valid = torch.cat([first, peaks_valid, components_valid], 1)
        return torch.where(valid[..., None], points, points[:, :1]), valid

    def prompts(self, heatmaps: Tensor, gt_masks: Tensor | None = None) -> Prompts:
        """The first candidate (the weighted centroid): the prior before the segmenter votes."""
        return foreground_points(self.candidates(heatmaps)[0][:, 0])

    def agreement(self, masks: Tensor, heatmaps: Tensor, scores: Tensor) -> Tensor:
        """(B,) how well masks (B, H, W) agree with heatmaps (B, H, W), plus segmenter scores."""
        peak = heatmaps.flatten(1).amax(1).clamp_min(torch.finfo(heatmaps.dtype).tiny)
        heat = heatmaps.flatten(1) / peak[:, None]
        hot = heat * relative_region(heatmaps, self.threshold).flatten(1)
        mask = masks.flatten(1).to(heat.dtype)
        union = (mask + hot - mask * hot).sum(1)
        soft_iou = (mask * hot).sum(1) / union.clamp_min(torch.finfo(heat.dtype).tiny)
        return soft_iou + self.segmenter_score_weight * scores.to(heat.dtype)

    def segment(
        self,
        heatmaps: Tensor,
        segmenter: Segmenter,
        state: Any,
        gt_masks: Tensor | None = None,
    ) -> tuple[Prompts, Tensor, Tensor]:
        points, valid = self.candidates(heatmaps)
        best = self._try(points[:, 0], heatmaps, segmenter, state)
        for slot in range(1, points.shape[1]):
            if not valid[:, slot].any():
                continue  # every image repeats its first candidate here: nothing new to try
            trial = self._try(points[:, slot], heatmaps, segmenter, state)
            better = trial[0] > best[0]
            best = tuple(
                torch.where(better.view(-1, *[1] * (new.ndim - 1)), new, old)
                for new, old in zip(trial, best, strict=True)
            )
        _, point, masks, scores = best
        prompts = foreground_points(point)
        if self.refine:
            inner = snap_to_mask(weighted_centroid(masks.float()), masks)
            prompts = foreground_points(inner, mask_boxes(masks) if self.refine_box else None)
            masks, scores = segmenter.predict(state, prompts, heatmaps)
        return prompts, masks, scores

    def _try(
        self, points: Tensor, heatmaps: Tensor, segmenter: Segmenter, state: Any
    ) -> tuple[Tensor, ...]:
        """Agreement (B,), points (B, 2), masks (B, H, W) and scores (B,) of one candidate slot."""
        masks, scores = segmenter.predict(state, foreground_points(points), heatmaps)
        masks, scores = masks.to(heatmaps.device), scores.to(heatmaps.device)
        return self.agreement(masks, heatmaps, scores), points, masks, scores
