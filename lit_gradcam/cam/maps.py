"""Operations on batches of maps (B, h, w): per-image min-max, and resampling onto the image.

Resampling is one matrix product per axis (rows @ map @ cols^T), which covers both pixel
conventions below, the classifier having run on a rescaled copy of the image, and any batch size
in one call on the map's device.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

#: Added to the denominator of the min-max so that a flat map becomes zeros, never NaN. The
#: grad-cam package uses the same constant, which keeps our maps equal to its maps.
MINMAX_EPS = 1e-7


def minmax(maps: Tensor) -> Tensor:
    """Each map of (B, h, w) shifted and scaled to [0, 1]; a flat map becomes all zeros."""
    flat = maps.flatten(1)
    low = flat.amin(1)[:, None, None]
    shifted = maps - low
    return shifted / (shifted.flatten(1).amax(1)[:, None, None] + MINMAX_EPS)


def feature_stride(input_pixels: int, cells: int) -> int:
    """The stride of a feature axis of `cells` computed from an input axis of `input_pixels`.

    Exact when the sizes divide; otherwise ("same"-padded stride-2 stages give ceil(n / 2) cells)
    the power of two nearest to the ratio.
    """
    if input_pixels % cells == 0:
        return input_pixels // cells
    return 2 ** round(math.log2(input_pixels / cells))


def interpolation_matrix(pixels: int, input_pixels: int, cells: int, align: bool) -> Tensor:
    """(pixels, cells) float64 linear-interpolation weights from a feature axis onto an image
    axis (built on the CPU: not every device has float64).

    The classifier saw the image axis (`pixels` long) resized to `input_pixels` (bilinear, half-
    pixel centres) and its layer has `cells` along it. Each image pixel centre is mapped to a
    fractional cell coordinate u, clamped to the first and last cell (constant beyond them):

    - ``align=False``: cell j covers input pixels [j s, (j + 1) s) and sits at their middle,
      j s + (s - 1) / 2, as in ``F.interpolate(..., align_corners=False)`` and ``cv2.resize``
      (the grad-cam package). Right for patch embeddings (kernel = stride, no padding).
    - ``align=True``: cell j sits at its receptive-field centre. In a network of "same"-padded
      convolutions and poolings (odd kernel k, padding (k - 1) / 2, e.g. torchvision's ResNets
      and VGG) that is input pixel j s, s the layer's stride: a stride-8 layer's map then sits
      3.5 px up and left of where ``align=False`` draws it.
    """
    x = torch.arange(pixels, dtype=torch.float64)
    centre = (x + 0.5) * (input_pixels / pixels) - 0.5  # pixel centre in the classifier's input
    if align:
        u = centre / feature_stride(input_pixels, cells)
    else:
        u = (centre + 0.5) * (cells / input_pixels) - 0.5
    u = u.clamp(0, cells - 1)
    low = u.floor().long()
    high = (low + 1).clamp(max=cells - 1)
    frac = u - low
    weights = torch.zeros(pixels, cells, dtype=torch.float64)
    weights.scatter_add_(1, low[:, None], (1 - frac)[:, None])
    weights.scatter_add_(1, high[:, None], frac[:, None])
    return weights


def resize_maps(
    maps: Tensor, size: tuple[int, int], input_size: tuple[int, int], align: bool = False
) -> Tensor:
    """Maps (B, h, w) of a layer onto the image grid `size` = (H, W), bilinearly.

    input_size: the (height, width) the classifier actually ran on (the image's size, or that of
    an upscaled copy); align: see `interpolation_matrix`.
    """
    h, w = maps.shape[-2:]
    rows = interpolation_matrix(size[0], input_size[0], h, align).to(maps.device, maps.dtype)
    cols = interpolation_matrix(size[1], input_size[1], w, align).to(maps.device, maps.dtype)
    return rows @ maps @ cols.T
