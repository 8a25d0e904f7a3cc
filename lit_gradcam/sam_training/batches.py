"""A batch of either data module as `SamTuner` reads it: uint8 pixels and per-object masks."""

from __future__ import annotations

import torch
from torch import Tensor

from lit_gradcam.imaging import denormalize_to_uint8


def object_masks(masks: Tensor) -> Tensor:
    """Object masks (B, K, H, W) bool of a batch's masks: (B, H, W) is one object per image."""
    masks = masks.bool()
    return masks[:, None] if masks.ndim == 3 else masks


def uint8_pixels(images: Tensor) -> Tensor:
    """uint8 images as they are; ImageNet-normalised ones (the shapes data) back to uint8."""
    return images if images.dtype == torch.uint8 else denormalize_to_uint8(images)
