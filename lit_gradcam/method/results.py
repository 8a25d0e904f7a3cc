"""What the pipeline returns for a batch: one `StrategyResult` per (segmenter, strategy) inside a
`PipelineOutput`, each sliceable, movable between devices and concatenable across batches."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor, nn

from lit_gradcam.prompt_types import PAD_LABEL, Prompts


@dataclass
class StrategyResult:
    """What one (segmenter, strategy) pair produced for a batch.

    cam_prompts are the prompts the heatmap gave before the segmenter took part; they are the
    final `prompts` themselves unless the strategy consults the segmenter.
    """

    heatmaps: Tensor  # (B, H, W) the CAM the strategy read
    prompts: Prompts
    masks: Tensor  # (B, H, W) bool
    scores: Tensor  # (B,)
    cam_prompts: Prompts

    def head(self, n: int) -> StrategyResult:
        """The first `n` images."""
        return self[:n]

    def __getitem__(self, images: slice) -> StrategyResult:
        """The images a slice selects."""
        return StrategyResult(
            self.heatmaps[images],
            _sliced_prompts(self.prompts, images),
            self.masks[images],
            self.scores[images],
            _sliced_prompts(self.cam_prompts, images),
        )

    def to(self, device: torch.device | str) -> StrategyResult:
        return StrategyResult(
            self.heatmaps.to(device),
            self.prompts.to(device),
            self.masks.to(device),
            self.scores.to(device),
            self.cam_prompts.to(device),
        )

    @staticmethod
    def cat(parts: Sequence[StrategyResult]) -> StrategyResult:
        return StrategyResult(
            torch.cat([p.heatmaps for p in parts]),
            cat_prompts([p.prompts for p in parts]),
            torch.cat([p.masks for p in parts]),
            torch.cat([p.scores for p in parts]),
            cat_prompts([p.cam_prompts for p in parts]),
        )


@dataclass
class PipelineOutput:
    """A batch through the pipeline: results keyed ``"{segmenter}/{strategy}"``.

    states: each segmenter's embedded batch by segmenter name, for work that prompts the same
    images again (the simulated clicker); slices, moves and concatenations leave them out.
    """

    images_uint8: Tensor  # (B, 3, H, W)
    logits: Tensor  # (B, num_classes)
    results: dict[str, StrategyResult]
    gt_masks: Tensor | None = None
    states: dict[str, Any] = field(default_factory=dict)

    @property
    def batch_size(self) -> int:
        return self.images_uint8.shape[0]

    def head(self, n: int, gt_masks: Tensor | None = None) -> PipelineOutput:
        """The first `n` images (with their ground truth, for figures)."""
        gt = gt_masks if gt_masks is not None else self.gt_masks
        return PipelineOutput(
            self.images_uint8[:n],
            self.logits[:n],
            {key: result.head(n) for key, result in self.results.items()},
            None if gt is None else gt[:n],
        )

    def to(self, device: torch.device | str) -> PipelineOutput:
        return PipelineOutput(
            self.images_uint8.to(device),
            self.logits.to(device),
            {key: result.to(device) for key, result in self.results.items()},
            None if self.gt_masks is None else self.gt_masks.to(device),
        )

    @staticmethod
    def cat(parts: Sequence[PipelineOutput]) -> PipelineOutput:
        gts = [p.gt_masks for p in parts]
        return PipelineOutput(
            torch.cat([p.images_uint8 for p in parts]),
            torch.cat([p.logits for p in parts]),
            {key: StrategyResult.cat([p.results[key] for p in parts]) for key in parts[0].results},
            None if any(g is None for g in gts) else torch.cat(gts),
        )


def _sliced_prompts(prompts: Prompts, images: slice) -> Prompts:
    """The prompts of the images a slice selects."""
    boxes = None if prompts.boxes is None else prompts.boxes[images]
    return Prompts(prompts.points[images], prompts.labels[images], boxes)


def cat_prompts(parts: Sequence[Prompts]) -> Prompts:
    """Concatenate prompt batches along B, padding points to the largest N with -1 labels."""
    n = max(p.points.shape[1] for p in parts)
    points, labels = [], []
    for p in parts:
        missing = n - p.points.shape[1]
        points.append(nn.functional.pad(p.points, (0, 0, 0, missing)))
        labels.append(nn.functional.pad(p.labels, (0, missing), value=PAD_LABEL))
    has_boxes = [p.boxes is not None for p in parts]
    if any(has_boxes) and not all(has_boxes):
        raise ValueError("cannot concatenate prompt batches with and without boxes")
    boxes = torch.cat([p.boxes for p in parts]) if all(has_boxes) else None
    return Prompts(torch.cat(points), torch.cat(labels), boxes)
