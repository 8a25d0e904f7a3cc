"""The prompt batch every layer passes around: `Prompts` and the point labels it carries.

Strategies produce it, segmenters consume it, metrics and pictures read it; it imports nothing of
the project so that each of them can depend on it.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

#: Label of a padding point: images with fewer points than the batch's N are padded with it.
#: It is segment_anything's own convention for "not a point".
PAD_LABEL = -1
FOREGROUND = 1
BACKGROUND = 0


@dataclass
class Prompts:
    """Point (and optional box) prompts for a batch of images.

    points: (B, N, 2) float, (x, y) pixel coordinates in the original image.
    labels: (B, N) long, 1 = foreground, 0 = background, -1 = padding (ignored).
    boxes:  optional (B, 4) float, x0, y0, x1, y1 in pixels.
    """

    points: Tensor
    labels: Tensor
    boxes: Tensor | None = None

    def validate(self, height: int, width: int) -> None:
        """Raise ValueError unless shapes, labels and coordinates fit an image of height x width."""
        if self.points.ndim != 3 or self.points.shape[-1] != 2:
            raise ValueError(f"Prompts.points must be (B, N, 2), got {tuple(self.points.shape)}")
        if self.labels.shape != self.points.shape[:2]:
            raise ValueError(
                f"Prompts.labels must be (B, N) = {tuple(self.points.shape[:2])}, "
                f"got {tuple(self.labels.shape)}"
            )
        bad = ~torch.isin(self.labels, self.labels.new_tensor([PAD_LABEL, BACKGROUND, FOREGROUND]))
        if bad.any():
            raise ValueError(
                f"Prompts.labels must be 1 (foreground), 0 (background) or -1 (padding), "
                f"got {sorted(set(self.labels[bad].tolist()))}"
            )
        real = self.labels != PAD_LABEL
        xy = self.points[real]
        outside = (xy[:, 0] < 0) | (xy[:, 0] > width - 1) | (xy[:, 1] < 0) | (xy[:, 1] > height - 1)
        if outside.any():
            raise ValueError(
                f"Prompts.points outside the {width}x{height} image (x in [0, {width - 1}], "
                f"y in [0, {height - 1}]): {xy[outside][:3].tolist()}"
            )
        if self.boxes is not None:
            if self.boxes.shape != (self.points.shape[0], 4):
                raise ValueError(
                    f"Prompts.boxes must be (B, 4) = ({self.points.shape[0]}, 4), "
                    f"got {tuple(self.boxes.shape)}"
                )
            x0, y0, x1, y1 = self.boxes.unbind(-1)
            if ((x1 < x0) | (y1 < y0)).any():
                raise ValueError("Prompts.boxes must be x0, y0, x1, y1 with x0 <= x1 and y0 <= y1")

    @property
    def batch_size(self) -> int:
        return self.points.shape[0]

    def to(self, device: torch.device | str) -> Prompts:
        boxes = None if self.boxes is None else self.boxes.to(device)
        return Prompts(self.points.to(device), self.labels.to(device), boxes)

    def select(self, index: int) -> Prompts:
        """The prompts of image `index`, padding points dropped, as a batch of one."""
        keep = self.labels[index] != PAD_LABEL
        boxes = None if self.boxes is None else self.boxes[index : index + 1]
        return Prompts(self.points[index, keep][None], self.labels[index, keep][None], boxes)

    @staticmethod
    def from_lists(
        points: list[Tensor], labels: list[Tensor], boxes: Tensor | None = None
    ) -> Prompts:
        """Stack per-image (n_i, 2) points and (n_i,) labels, padding to the longest with -1."""
        n = max((p.shape[0] for p in points), default=0)
        batch = len(points)
        device = points[0].device if points else None
        out_points = torch.zeros(batch, n, 2, device=device)
        out_labels = torch.full((batch, n), PAD_LABEL, dtype=torch.long, device=device)
        for i, (p, lab) in enumerate(zip(points, labels, strict=True)):
            out_points[i, : p.shape[0]] = p.float()
            out_labels[i, : lab.shape[0]] = lab.long()
        return Prompts(out_points, out_labels, boxes)
