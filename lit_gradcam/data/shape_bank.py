"""The bank of shapes the generators draw, and how one is placed and painted on a 48x64 image.

Every shape is hard-edged (a pixel belongs to it when its centre does) and upright, `size` px
across at its widest, drawn by a function of (cx, cy, size, rng) that returns an (H, W) bool mask,
clipped at the border; `random_shape` can also turn it by a random angle. The course's five
`CLASSES` come first, drawn as they always were; the rest widen the choice for multi-object
scenes.
"""

from __future__ import annotations

from collections.abc import Callable

import cv2
import numpy as np

from lit_gradcam.data.backgrounds import HEIGHT, WIDTH

SIZE_RANGE = (13.0, 19.0)
TRANSLUCENT_FRACTION = 1 / 3
ALPHA_RANGE = (0.5, 0.8)
#: Beyond this turn (degrees) a square starts to look like a diamond: they differ by 45, so any
#: turn where both are classes stays within it.
SQUARE_DIAMOND_DEGREES = 15.0
#: How far (as a fraction of the shape's extent) the centre may come to the border: below 0.5
#: the shape is cut, at most by 0.5 - BORDER_MARGIN of its extent on each side.
BORDER_MARGIN = 0.3

_ys, _xs = np.mgrid[0:HEIGHT, 0:WIDTH]
#: Pixel centres, the points a hard-edged raster tests against each shape.
_PX, _PY = _xs + 0.5, _ys + 0.5

ShapeFn = Callable[[float, float, float, np.random.Generator], np.ndarray]


def _in_polygon(vertices: np.ndarray) -> np.ndarray:
    """Boolean (H, W) raster of pixel centres inside a polygon (even-odd rule, no antialiasing)."""
    inside = np.zeros((HEIGHT, WIDTH), dtype=bool)
    for (x1, y1), (x2, y2) in zip(vertices, np.roll(vertices, -1, axis=0), strict=True):
        if y1 == y2:
            continue  # a horizontal edge is never crossed by a horizontal ray
        crosses = (y1 > _PY) != (y2 > _PY)
        x_cross = x1 + (_PY - y1) * (x2 - x1) / (y2 - y1)
        inside ^= crosses & (_PX < x_cross)
    return inside


def _regular(cx: float, cy: float, radius: float, corners: int, first: float) -> np.ndarray:
    """A regular polygon's mask: `corners` vertices on a circle, the first at angle `first`."""
    angles = first + np.arange(corners) * 2 * np.pi / corners
    return _in_polygon(np.stack([cx + radius * np.cos(angles), cy + radius * np.sin(angles)], 1))


def _disc(cx: float, cy: float, radius: float) -> np.ndarray:
    return (_PX - cx) ** 2 + (_PY - cy) ** 2 <= radius**2


def circle(cx: float, cy: float, size: float, rng: np.random.Generator) -> np.ndarray:
    return _disc(cx, cy, size / 2)


def square(cx: float, cy: float, size: float, rng: np.random.Generator) -> np.ndarray:
    half = size / 2
    return (np.abs(_PX - cx) <= half) & (np.abs(_PY - cy) <= half)


def triangle(cx: float, cy: float, size: float, rng: np.random.Generator) -> np.ndarray:
    """Apex up, as high as 0.8-1.0 times its base (equilateral is 0.87)."""
    half = size / 2
    half_height = half * rng.uniform(0.8, 1.0)
    top, bottom = cy - half_height, cy + half_height
    return _in_polygon(np.array([[cx, top], [cx + half, bottom], [cx - half, bottom]]))


def star(cx: float, cy: float, size: float, rng: np.random.Generator) -> np.ndarray:
    """Five points, the first straight up."""
    half = size / 2
    radii = np.tile([half, half * rng.uniform(0.38, 0.5)], 5)
    angles = -np.pi / 2 + np.arange(10) * np.pi / 5
    return _in_polygon(np.stack([cx + radii * np.cos(angles), cy + radii * np.sin(angles)], 1))


def diamond(cx: float, cy: float, size: float, rng: np.random.Generator) -> np.ndarray:
    return np.abs(_PX - cx) + np.abs(_PY - cy) <= size / 2


def hexagon(cx: float, cy: float, size: float, rng: np.random.Generator) -> np.ndarray:
    """Regular, corners left and right, flat top and bottom."""
    return _regular(cx, cy, size / 2, 6, 0.0)


def pentagon(cx: float, cy: float, size: float, rng: np.random.Generator) -> np.ndarray:
    """Regular, one corner straight up."""
    return _regular(cx, cy, size / 2, 5, -np.pi / 2)


def cross(cx: float, cy: float, size: float, rng: np.random.Generator) -> np.ndarray:
    """A plus sign, its arms 0.3-0.4 of its extent wide."""
    half, arm = size / 2, size * rng.uniform(0.15, 0.2)
    dx, dy = np.abs(_PX - cx), np.abs(_PY - cy)
    return ((dx <= half) & (dy <= arm)) | ((dx <= arm) & (dy <= half))


def crescent(cx: float, cy: float, size: float, rng: np.random.Generator) -> np.ndarray:
    """A disc less a smaller disc shifted right: horns pointing right, cut blunt short of where
    the circles cross, so their tips do not thin out into loose pixels."""
    half = size / 2
    shift, radius = half * rng.uniform(0.45, 0.6), half * rng.uniform(0.75, 0.85)
    tips = cx + (half**2 - radius**2 + shift**2) / (2 * shift)
    bite = _disc(cx + shift, cy, radius)
    return _disc(cx, cy, half) & ~bite & (_PX <= tips - 0.08 * size)


def ring(cx: float, cy: float, size: float, rng: np.random.Generator) -> np.ndarray:
    """A disc with a centred hole 0.5-0.6 of its diameter."""
    half = size / 2
    return _disc(cx, cy, half) & ~_disc(cx, cy, half * rng.uniform(0.5, 0.6))


def heart(cx: float, cy: float, size: float, rng: np.random.Generator) -> np.ndarray:
    """Two lobes above a point straight down, 7/8 as high as wide."""
    quarter = size / 4
    lobe_y, tip_y = cy - 1.5 * quarter / 2, cy + 3.5 * quarter / 2
    lobes = _disc(cx - quarter, lobe_y, quarter) | _disc(cx + quarter, lobe_y, quarter)
    return lobes | _in_polygon(
        np.array([[cx - 2 * quarter, lobe_y], [cx + 2 * quarter, lobe_y], [cx, tip_y]])
    )


def arrow(cx: float, cy: float, size: float, rng: np.random.Generator) -> np.ndarray:
    """Pointing up: a head 0.45 of its height over a shaft 0.3-0.4 of its width."""
    half, shaft = size / 2, size * rng.uniform(0.15, 0.2)
    top, neck, bottom = cy - half, cy - half + 0.45 * size, cy + half
    xs = cx + np.array([0, half, shaft, shaft, -shaft, -shaft, -half])
    ys = np.array([top, neck, neck, bottom, bottom, neck, neck])
    return _in_polygon(np.stack([xs, ys], 1))


def ellipse(cx: float, cy: float, size: float, rng: np.random.Generator) -> np.ndarray:
    """Lying flat, 0.5-0.7 times as high as wide."""
    half = size / 2
    return ((_PX - cx) / half) ** 2 + ((_PY - cy) / (half * rng.uniform(0.5, 0.7))) ** 2 <= 1


def trapezoid(cx: float, cy: float, size: float, rng: np.random.Generator) -> np.ndarray:
    """The wide side down; the top 0.4-0.6 of the base, the height 0.6-0.8 of it."""
    half = size / 2
    top_half, half_height = half * rng.uniform(0.4, 0.6), half * rng.uniform(0.6, 0.8)
    top, bottom = cy - half_height, cy + half_height
    xs = cx + np.array([-top_half, top_half, half, -half])
    return _in_polygon(np.stack([xs, [top, top, bottom, bottom]], 1))


SHAPES: dict[str, ShapeFn] = {
    fn.__name__: fn
    for fn in (
        circle,
        square,
        triangle,
        star,
        diamond,
        hexagon,
        pentagon,
        cross,
        crescent,
        ring,
        heart,
        arrow,
        ellipse,
        trapezoid,
    )
}
#: Every shape name, the course's five first.
BANK = tuple(SHAPES)


def shape_mask(
    name: str, cx: float, cy: float, size: float, rng: np.random.Generator
) -> np.ndarray:
    """Hard-edged (H, W) bool mask of shape `name` centred at (cx, cy), `size` px across."""
    if name not in SHAPES:
        raise ValueError(f"unknown shape {name!r}; choose one of {', '.join(BANK)}")
    return SHAPES[name](cx, cy, size, rng)


def random_shape(
    name: str,
    size_range: tuple[float, float],
    rng: np.random.Generator,
    rotation: float = 0.0,
) -> np.ndarray:
    """Mask of shape `name`, of a random size in `size_range`, at a random centre that lets the
    border cut it by at most 0.5 - BORDER_MARGIN of its extent on each side, turned by an angle
    drawn from [-rotation, rotation] degrees (no draw at 0, so upright scenes keep their pixels)."""
    size = rng.uniform(*size_range)
    margin = BORDER_MARGIN * size
    cx, cy = rng.uniform(margin, WIDTH - margin), rng.uniform(margin, HEIGHT - margin)
    if rotation == 0:
        return shape_mask(name, cx, cy, size, rng)
    return turned_shape(name, cx, cy, size, rng.uniform(-rotation, rotation), rng)


def turned_shape(
    name: str, cx: float, cy: float, size: float, degrees: float, rng: np.random.Generator
) -> np.ndarray:
    """Mask of shape `name` turned anticlockwise by `degrees` about its centre (cx, cy): drawn
    upright near the frame's middle at the centre's sub-pixel phase (there any size up to the
    frame's height fits whole), then moved in one bilinear warp and cut at half coverage, so a
    turn by 0 draws exactly what `shape_mask` does."""
    middle = (WIDTH // 2 + cx % 1, HEIGHT // 2 + cy % 1)
    upright = shape_mask(name, *middle, size, rng).astype(np.float32)
    # pixel centres sit at +0.5 here and at integers in OpenCV's coordinates
    matrix = cv2.getRotationMatrix2D((middle[0] - 0.5, middle[1] - 0.5), degrees, 1.0)
    matrix[:, 2] += (cx - middle[0], cy - middle[1])
    return cv2.warpAffine(upright, matrix, (WIDTH, HEIGHT), flags=cv2.INTER_LINEAR) >= 0.5


def paint(image: np.ndarray, mask: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A copy of `image` with `mask` in one flat random colour, translucent (alpha in
    ALPHA_RANGE) for TRANSLUCENT_FRACTION of the shapes."""
    colour = rng.integers(0, 256, size=3)
    alpha = rng.uniform(*ALPHA_RANGE) if rng.random() < TRANSLUCENT_FRACTION else 1.0
    blended = alpha * colour + (1 - alpha) * image[mask]
    image = image.copy()
    image[mask] = np.clip(np.rint(blended), 0, 255).astype(np.uint8)
    return image
