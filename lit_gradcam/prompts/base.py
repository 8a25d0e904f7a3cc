"""The strategy seam: a heatmap batch in, `Prompts` (and, through the segmenter, masks) out."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from lit_gradcam.cam.spec import CamSpec
from lit_gradcam.prompt_types import FOREGROUND, Prompts
from lit_gradcam.segmenters.base import Segmenter


@dataclass
class ObjectSegmentation:
    """What a strategy cut for each heatmap when it may prompt several objects per heatmap.

    points: (P, M, 2) one foreground point per object prompt (x, y); valid: (P, M) bool, False
    for empty slots; masks: (P, H, W) bool, the union of the heatmap's object masks.
    """

    points: Tensor
    valid: Tensor
    masks: Tensor


class PromptStrategy(ABC):
    """Turns heatmaps (B, H, W) in [0, 1] into prompts; `segment` runs the segmenter on them.

    name: label used in metric keys and tables (default: the class name).
    cam: which CAM this strategy reads; None = the evaluation's default CAM.
    """

    #: True for oracles that read the ground-truth mask: reported as a ceiling, never a method.
    uses_ground_truth: bool = False

    def __init__(self, name: str | None = None, cam: CamSpec | None = None) -> None:
        self.name = name or type(self).__name__
        self.cam = cam

    @abstractmethod
    def prompts(self, heatmaps: Tensor, gt_masks: Tensor | None = None) -> Prompts:
        """Prompts for each image of the batch, on the heatmaps' device.

        For a strategy that consults the segmenter these are the prompts the heatmap alone
        gives, before any mask is seen: the evaluation scores them next to the final prompts.
        """

    @property
    def consults_segmenter(self) -> bool:
        """True when `segment` is overridden, so the final prompts may depend on the masks."""
        return type(self).segment is not PromptStrategy.segment

    def segment(
        self,
        heatmaps: Tensor,
        segmenter: Segmenter,
        state: Any,
        gt_masks: Tensor | None = None,
    ) -> tuple[Prompts, Tensor, Tensor]:
        """Prompts, masks (B, H, W) bool and scores (B,). Strategies that consult the segmenter
        (several candidates on the shared `state`) override this; none may re-embed."""
        prompts = self.prompts(heatmaps, gt_masks)
        masks, scores = segmenter.predict(state, prompts, heatmaps)
        return prompts, masks, scores

    def segment_objects(
        self,
        heatmaps: Tensor,
        segmenter: Segmenter,
        state: Any,
        gt_masks: Tensor | None = None,
    ) -> ObjectSegmentation:
        """Segment what each heatmap (one class of one image) shows. A single-object strategy
        prompts it as one object (`segment`); per-object strategies override this."""
        prompts, masks, _ = self.segment(heatmaps, segmenter, state, gt_masks)
        masks = masks.to(heatmaps.device).bool()
        return ObjectSegmentation(prompts.points, prompts.labels == FOREGROUND, masks)


def foreground_points(points: Tensor, boxes: Tensor | None = None) -> Prompts:
    """Prompts of one foreground point (B, 2) per image, with optional boxes (B, 4)."""
    labels = torch.full((points.shape[0], 1), FOREGROUND, dtype=torch.long, device=points.device)
    return Prompts(points[:, None], labels, boxes)
