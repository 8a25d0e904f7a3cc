"""Pictures people look at, as uint8 tensors: heat colours, prompts, mask tints and outlines, and
the pipeline grid (input | heatmap | prompts | mask | ground truth)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor
from torchvision.utils import make_grid

from lit_gradcam.prompt_types import BACKGROUND, FOREGROUND, Prompts

FOREGROUND_COLOUR = (0, 255, 0)
BACKGROUND_COLOUR = (255, 0, 0)
BOX_COLOUR = (255, 255, 0)
MASK_COLOUR = (0, 160, 255)


def heat_colours(heatmaps: Tensor) -> Tensor:
    """A jet-like colour map: (B, H, W) in [0, 1] -> uint8 (B, 3, H, W)."""
    h = heatmaps.clamp(0, 1)[:, None]
    red = (1.5 - (4 * h - 3).abs()).clamp(0, 1)
    green = (1.5 - (4 * h - 2).abs()).clamp(0, 1)
    blue = (1.5 - (4 * h - 1).abs()).clamp(0, 1)
    return (torch.cat([red, green, blue], 1) * 255).round().to(torch.uint8)


def blend(base: Tensor, layer: Tensor, alpha: float | Tensor) -> Tensor:
    """Alpha-blend two uint8 (B, 3, H, W) images; `alpha` may be a (B, 1, H, W) weight map."""
    out = base.float() * (1 - alpha) + layer.float() * alpha
    return out.round().clamp(0, 255).to(torch.uint8)


def _paint(images: Tensor, where: Tensor, colour: tuple[int, int, int]) -> Tensor:
    """Set pixels where `where` (B, H, W) is True to `colour`."""
    fill = torch.tensor(colour, dtype=torch.uint8, device=images.device).view(1, 3, 1, 1)
    return torch.where(where[:, None], fill, images)


def draw_prompts(images: Tensor, prompts: Prompts, radius: float = 1.5) -> Tensor:
    """Points as discs (foreground green, background red) and boxes as yellow outlines."""
    batch, _, height, width = images.shape
    ys = torch.arange(height, device=images.device).view(1, 1, height, 1).float()
    xs = torch.arange(width, device=images.device).view(1, 1, 1, width).float()
    if prompts.boxes is not None:
        x0, y0, x1, y1 = (v.view(batch, 1, 1) for v in prompts.boxes.round().unbind(-1))
        inside = (xs[:, 0] >= x0) & (xs[:, 0] <= x1) & (ys[:, 0] >= y0) & (ys[:, 0] <= y1)
        edge = (xs[:, 0] == x0) | (xs[:, 0] == x1) | (ys[:, 0] == y0) | (ys[:, 0] == y1)
        images = _paint(images, inside & edge, BOX_COLOUR)
    px = prompts.points[..., 0].view(batch, -1, 1, 1)
    py = prompts.points[..., 1].view(batch, -1, 1, 1)
    near = (xs - px) ** 2 + (ys - py) ** 2 <= radius**2  # (B, N, H, W)
    for label, colour in ((BACKGROUND, BACKGROUND_COLOUR), (FOREGROUND, FOREGROUND_COLOUR)):
        chosen = (prompts.labels == label).view(batch, -1, 1, 1)
        images = _paint(images, (near & chosen).any(1), colour)
    return images


def mask_panel(images: Tensor, masks: Tensor) -> Tensor:
    """The image darkened outside the mask, tinted inside it."""
    tint = torch.tensor(MASK_COLOUR, dtype=torch.uint8, device=images.device).view(1, 3, 1, 1)
    tinted = blend(images, tint.expand_as(images), 0.5)
    return torch.where(masks[:, None], tinted, (images.float() * 0.35).to(torch.uint8))


def mask_outline(images: Tensor, masks: Tensor, width: int = 1) -> Tensor:
    """Paint the inner boundary (`width` px) of each mask (B, H, W) onto the images."""
    outside = (~masks)[:, None].float()
    # a square window as a row pass then a column pass: the same maximum, linear in `width`
    rows = F.max_pool2d(outside, (1, 2 * width + 1), stride=1, padding=(0, width))
    near_outside = F.max_pool2d(rows, (2 * width + 1, 1), stride=1, padding=(width, 0))[:, 0] > 0
    return _paint(images, masks & near_outside, MASK_COLOUR)


def pipeline_grid(
    images: Tensor,
    heatmaps: Tensor,
    prompts: Prompts,
    masks: Tensor,
    gt_masks: Tensor,
    scale: int = 4,
) -> Tensor:
    """One row per image: input | heatmap overlay | prompts | predicted mask | ground truth.

    images uint8 (B, 3, H, W); heatmaps (B, H, W); masks, gt_masks bool (B, H, W). Returns a
    uint8 (3, H', W') grid, each panel upscaled `scale` times (nearest) so pixels stay visible.
    """
    overlay = blend(images, heat_colours(heatmaps), 0.5)
    panels = [
        images,
        overlay,
        draw_prompts(overlay, prompts),
        mask_panel(images, masks),
        mask_panel(images, gt_masks),
    ]
    rows = torch.stack(panels, 1).flatten(0, 1)  # (B * 5, 3, H, W), row-major
    rows = F.interpolate(rows.float(), scale_factor=scale, mode="nearest").to(torch.uint8)
    return make_grid(rows, nrow=len(panels), padding=2, pad_value=255)
