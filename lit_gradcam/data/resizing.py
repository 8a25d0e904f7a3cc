"""Reading a folder's images and masks at one size (`data.image_size`), whatever their own.

Images are resized as `predict` resizes its pictures (bilinear with antialiasing), so a model
tested on a resized folder sees what it sees in `predict`. Masks take the nearest pixel's value,
so a class index, the ignored value 255 or a binary mask's shape stays exactly what it was: an
interpolated index would name another class.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F


def resized_image(image: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """An (H, W, 3) uint8 image at `size` (height, width), bilinear with antialiasing."""
    if image.shape[:2] == tuple(size):
        return image
    pixels = torch.from_numpy(image).permute(2, 0, 1)[None].float()
    out = F.interpolate(pixels, size=tuple(size), mode="bilinear", antialias=True)
    return out[0].permute(1, 2, 0).round().clamp(0, 255).to(torch.uint8).numpy()


def resized_mask(mask: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """An (H, W) mask (bool or uint8 class indices) at `size`, each pixel the value of the
    source pixel nearest its centre; same dtype."""
    if mask.shape == tuple(size):
        return mask
    values = torch.from_numpy(mask.astype(np.uint8))[None, None].float()
    out = F.interpolate(values, size=tuple(size), mode="nearest-exact")
    return out[0, 0].to(torch.uint8).numpy().astype(mask.dtype)
