"""Backgrounds of the SAM stand-in's training scenes, drawn in batches with torch.

Photo crops at random scales from scikit-image's bundled images that neither shapes generator
uses (grey ones tinted between two random colours), dead leaves (the clutter of a colour photo:
overlapping discs of random colours, sizes spread as in natural images), multi-octave value
noise, linear gradients and flat colours; most of them blurred as an upscaled small image is.
The bundled photos that are left are few and mostly grey, so dead leaves stand in for the
colourful, cluttered photos (CIFAR-10's) that the shapes are drawn over. Every draw comes from the
`torch.Generator` it is given, so a seed fixes the output.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torch import Tensor

#: Images bundled in skimage/data that neither `data.backgrounds` nor the foreign generator
#: (`benchmarks/foreign.py`) reads.
SCENE_PHOTOS = (
    "cell.png",
    "clock_motion.png",
    "microaneurysms.png",
    "color.png",
)
#: Chance of each background kind: photo, dead leaves, noise, gradient, flat.
KIND_WEIGHTS = (0.3, 0.3, 0.2, 0.1, 0.1)
#: Discs per dead-leaves background, and their smallest radius in pixels; the largest is half
#: the image's shorter side.
LEAVES, LEAF_MIN_RADIUS = 160, 2.0
BLUR_SHARE = 0.75


def _uniform(generator: torch.Generator, shape: tuple[int, ...], low: float, high: float) -> Tensor:
    return low + (high - low) * torch.rand(shape, generator=generator)


def _photo_dir() -> Path:
    import skimage

    return Path(skimage.__file__).parent / "data"


def load_photos(photo_dir: Path | None = None) -> list[Tensor]:
    """The scene photos as float (C, H, W) tensors in [0, 255]; C is 1 for grey images."""
    photo_dir = _photo_dir() if photo_dir is None else photo_dir
    photos = []
    for name in SCENE_PHOTOS:
        with Image.open(photo_dir / name) as photo:
            mode = "RGB" if photo.mode in ("RGB", "RGBA") else "L"
            array = np.asarray(photo.convert(mode), dtype=np.float32)
        photos.append(torch.from_numpy(array.reshape(*array.shape[:2], -1)).permute(2, 0, 1))
    return photos


def _photo(photo: Tensor, height: int, width: int, generator: torch.Generator) -> Tensor:
    """A (3, height, width) crop of `photo` at a random scale, grey ones tinted."""
    _, photo_h, photo_w = photo.shape
    scale = float(_uniform(generator, (), 0.15, 1.0))
    crop_h = max(int(photo_h * scale), 4)
    crop_w = min(max(int(crop_h * width / height), 4), photo_w)
    top = int(torch.randint(0, photo_h - crop_h + 1, (), generator=generator))
    left = int(torch.randint(0, photo_w - crop_w + 1, (), generator=generator))
    crop = photo[None, :, top : top + crop_h, left : left + crop_w]
    crop = F.interpolate(crop, (height, width), mode="bilinear", antialias=True)[0]
    if crop.shape[0] == 1:
        low, high = _uniform(generator, (2, 3, 1, 1), 0, 255)
        return low + crop / 255 * (high - low)
    return crop * _uniform(generator, (3, 1, 1), 0.7, 1.2)


def _noise(height: int, width: int, generator: torch.Generator) -> Tensor:
    """Colour value noise: random grids of doubling resolution and halving weight."""
    total = torch.zeros(1, 3, height, width)
    for octave in range(4):
        cells = 2 ** (octave + 1) + 1
        grid = torch.rand(1, 3, cells, cells, generator=generator)
        total += F.interpolate(grid, (height, width), mode="bicubic") * 0.5**octave
    total = (total - total.amin()) / (total.amax() - total.amin()).clamp_min(1e-6)
    low, high = _uniform(generator, (2, 3, 1, 1), 0, 255)
    return low + total[0] * (high - low)


def _gradient(height: int, width: int, generator: torch.Generator) -> Tensor:
    """A linear ramp between two random colours along a random direction."""
    angle = float(_uniform(generator, (), 0, 2 * math.pi))
    ys = torch.linspace(-0.5, 0.5, height)[:, None]
    xs = torch.linspace(-0.5, 0.5, width)[None]
    ramp = (xs * math.cos(angle) + ys * math.sin(angle) + 0.5).clamp(0, 1)
    start, end = _uniform(generator, (2, 3, 1, 1), 0, 255)
    return start + ramp * (end - start)


def leaf_radii(count: int, low: float, high: float, generator: torch.Generator) -> Tensor:
    """`count` radii in [low, high] with density ~ 1/r^3, the scale-invariant law of natural
    images' regions (drawn by inverting its CDF)."""
    u = torch.rand(count, generator=generator)
    return (low**-2 - u * (low**-2 - high**-2)) ** -0.5


def paint_discs(height: int, width: int, centres: Tensor, radii: Tensor, colours: Tensor) -> Tensor:
    """(3, height, width): discs (`centres` (L, 2) as (y, x), `radii` (L,)) painted in order,
    each pixel the colour of the last disc over it; `colours` (L + 1, 3), row 0 the base colour
    where none falls."""
    ys = torch.arange(height, dtype=torch.float32)
    xs = torch.arange(width, dtype=torch.float32)
    # squared distance to each centre less its radius squared, split by axis: (L, H) + (L, W)
    dy = (ys[None] - centres[:, :1]) ** 2 - radii[:, None] ** 2
    dx = (xs[None] - centres[:, 1:]) ** 2
    inside = dy[:, :, None] + dx[:, None, :] <= 0
    order = torch.arange(1, len(radii) + 1, dtype=torch.int16)[:, None, None]
    top = torch.where(inside, order, torch.zeros((), dtype=torch.int16)).amax(0)
    return colours[top.long()].permute(2, 0, 1)


def _dead_leaves(height: int, width: int, generator: torch.Generator) -> Tensor:
    """Dead leaves: LEAVES discs of random colours over a random base colour, centres spread
    a little past the border so that big discs also enter from outside."""
    r_max = min(height, width) / 2
    radii = leaf_radii(LEAVES, LEAF_MIN_RADIUS, r_max, generator)
    cy = _uniform(generator, (LEAVES,), -r_max / 2, height + r_max / 2)
    cx = _uniform(generator, (LEAVES,), -r_max / 2, width + r_max / 2)
    colours = _uniform(generator, (LEAVES + 1, 3), 0, 255)
    return paint_discs(height, width, torch.stack([cy, cx], 1), radii, colours)


def _flat(height: int, width: int, generator: torch.Generator) -> Tensor:
    colour = _uniform(generator, (3, 1, 1), 0, 255)
    return colour + 6 * torch.randn(3, height, width, generator=generator)


def _blur(image: Tensor, generator: torch.Generator) -> Tensor:
    """Down to 1/1.5 .. 1/3 of the size and back up bilinearly (an upscaled small image)."""
    height, width = image.shape[-2:]
    factor = float(_uniform(generator, (), 1.5, 3.0))
    small = (max(int(height / factor), 2), max(int(width / factor), 2))
    down = F.interpolate(image[None], small, mode="bilinear", antialias=True)
    return F.interpolate(down, (height, width), mode="bilinear")[0]


class SceneBackgrounds:
    """Batches of (B, 3, H, W) float backgrounds in [0, 255]."""

    def __init__(self, photos: list[Tensor] | None = None) -> None:
        self.photos = load_photos() if photos is None else photos

    def sample(self, batch: int, height: int, width: int, generator: torch.Generator) -> Tensor:
        kinds = torch.multinomial(
            torch.tensor(KIND_WEIGHTS), batch, replacement=True, generator=generator
        ).tolist()
        images = []
        for kind in kinds:
            if kind == 0:
                index = int(torch.randint(len(self.photos), (), generator=generator))
                image = _photo(self.photos[index], height, width, generator)
            elif kind == 1:
                image = _dead_leaves(height, width, generator)
            elif kind == 2:
                image = _noise(height, width, generator)
            elif kind == 3:
                image = _gradient(height, width, generator)
            else:
                image = _flat(height, width, generator)
            if float(torch.rand((), generator=generator)) < BLUR_SHARE:
                image = _blur(image, generator)
            images.append(image)
        return torch.stack(images).clamp(0, 255)
