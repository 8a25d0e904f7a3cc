"""Synthetic heatmaps whose right answer is known by construction, and a check every strategy's
prompts must pass: shared by the strategy tests."""

from __future__ import annotations

import torch
from torch import Tensor

from lit_gradcam.prompt_types import FOREGROUND, Prompts

H, W = 32, 48


def blob(cx: float, cy: float, sigma: float, amplitude: float = 1.0) -> Tensor:
    """(H, W) Gaussian bump centred at pixel (cx, cy)."""
    ys, xs = torch.meshgrid(torch.arange(H).float(), torch.arange(W).float(), indexing="ij")
    return amplitude * torch.exp(-((xs - cx) ** 2 + (ys - cy) ** 2) / (2 * sigma**2))


def as_heatmaps(*maps: Tensor) -> Tensor:
    """Stack maps into (B, H, W), each rescaled to max 1 as a CAM is."""
    stacked = torch.stack(maps)
    return stacked / stacked.flatten(1).amax(1).clamp_min(1e-12)[:, None, None]


def disc(cx: float, cy: float, radius: float) -> Tensor:
    ys, xs = torch.meshgrid(torch.arange(H).float(), torch.arange(W).float(), indexing="ij")
    return (xs - cx) ** 2 + (ys - cy) ** 2 <= radius**2


def check(prompts: Prompts, batch: int) -> None:
    prompts.validate(H, W)
    assert prompts.batch_size == batch
    assert torch.isfinite(prompts.points).all()
    assert (prompts.labels == FOREGROUND).any(1).all()
    if prompts.boxes is not None:
        assert torch.isfinite(prompts.boxes).all()
