"""ImageNet normalisation and its inverse, low in the house so data, cam and segmenters share it.

It imports torch only: the data pipeline normalises what the classifier reads, and the
segmenters undo it to get the uint8 pixels they cut, without either importing the other.
"""

from __future__ import annotations

import torch
from torch import Tensor

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def normalize_imagenet(images: Tensor) -> Tensor:
    """ImageNet-normalise float RGB in [0, 1], (..., 3, H, W): what the classifier reads."""
    mean = images.new_tensor(IMAGENET_MEAN).view(3, 1, 1)
    std = images.new_tensor(IMAGENET_STD).view(3, 1, 1)
    return (images - mean) / std


def denormalize_to_uint8(
    images: Tensor,
    mean: tuple[float, float, float] = IMAGENET_MEAN,
    std: tuple[float, float, float] = IMAGENET_STD,
) -> Tensor:
    """Undo the normalisation: float (..., 3, H, W) -> uint8 RGB of the same shape and device."""
    m = images.new_tensor(mean).view(3, 1, 1)
    s = images.new_tensor(std).view(3, 1, 1)
    return (images * s + m).mul(255).round().clamp(0, 255).to(torch.uint8)


def image_tensor(pixels: Tensor, normalize: bool = True) -> Tensor:
    """A (H, W, 3) uint8 image as the float32 (3, H, W) tensor the classifier reads: in [0, 1],
    then ImageNet-normalised if `normalize`."""
    image = pixels.permute(2, 0, 1).float().div_(255)
    return normalize_imagenet(image) if normalize else image
