"""The report's inverse-distance heatmap transform (its eqs. 1-2), batched as one convolution."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from lit_gradcam.cam.maps import minmax
from lit_gradcam.errors import ConfigError


class InverseDistanceSmoothing:
    """``H~ = H + H * K`` with ``K(i, j) = 1 / sqrt(i^2 + j^2 + eps)``, i, j in [-r, r].

    ``*`` is a 2-D convolution with zero padding (K is symmetric, so it equals PyTorch's
    cross-correlation), run as one ``conv2d`` for the whole batch on the maps' device. Each heat
    pixel thus gains the heat around it, discounted by distance, which favours broad hot regions
    over isolated spikes. The result is rescaled to [0, 1] per image (a choice of ours: the report
    leaves the scale open; strategies only compare values within an image).

    Args:
        radius: r, the kernel's half-width in pixels. Default 5 (an 11 x 11 kernel): the
            radius measured for the report's setup, a bit more than half a stride-8 cell's span.
        eps: keeps the centre weight finite. Default 1.0: the centre weighs 1, the nearest
            neighbours 1/sqrt(2), so no pixel dominates its own neighbourhood.
    """

    def __init__(self, radius: int = 5, eps: float = 1.0) -> None:
        if radius < 0:
            raise ConfigError(f"radius must be non-negative, got {radius}")
        if eps <= 0:
            raise ConfigError(f"eps must be positive, got {eps}")
        self.radius = radius
        self.eps = eps

    def kernel(self, device: torch.device | str = "cpu") -> Tensor:
        """K as a (2r + 1, 2r + 1) float32 tensor."""
        offsets = torch.arange(-self.radius, self.radius + 1, device=device, dtype=torch.float32)
        return (offsets[:, None].square() + offsets[None, :].square() + self.eps).rsqrt()

    def __call__(self, heatmaps: Tensor) -> Tensor:
        """Heatmaps (B, H, W) -> smoothed heatmaps (B, H, W) in [0, 1], same device."""
        maps = heatmaps.float()
        kernel = self.kernel(maps.device)[None, None]
        spread = F.conv2d(maps[:, None], kernel, padding=self.radius)[:, 0]
        return minmax(maps + spread)
