"""Class-agnostic training scenes for the SAM stand-in: a miniature SA-1B, drawn on the fly.

A scene holds 1 to `max_objects` objects of no class: polygons with 3 to 8 sides (regular or
irregular), stars with 4 to 8 points, ellipses, rounded rectangles (superellipses) and smooth
random blobs, some with a hole. They are from a few pixels to half the image across, placed
anywhere (touching, overlapping, crossing the border), filled flat, with a gradient or with a
tinted texture, some translucent, over `SceneBackgrounds`. Edges are hard (pixel centres tested,
as in `data.generate`) in half of the images and anti-aliased in the other half. An object's mask
is its visible part: whatever objects drawn later cover is taken away.

A batch is drawn whole, vectorised over its objects, from one `torch.Generator`, so a seed fixes
it. It is not the evaluation's generator and never scores anything.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor

from lit_gradcam.sam_training.scene_backgrounds import SceneBackgrounds, _uniform

#: Object kinds, drawn with the chances in KIND_WEIGHTS.
KINDS = ("polygon", "star", "ellipse", "rounded_rect", "blob")
KIND_WEIGHTS = (0.3, 0.2, 0.2, 0.15, 0.15)
#: Most outline vertices (an 8-pointed star).
MAX_VERTICES = 16
HOLE_SHARE = 0.15
#: Objects narrower than this (pixels) get no hole: it would vanish between pixels.
HOLE_MIN_DIAMETER = 10.0
TRANSLUCENT_SHARE = 0.2
ALPHA_RANGE = (0.55, 0.9)
SOFT_EDGE_SHARE = 0.5
#: Share of each fill: flat colour, two-colour gradient, tinted texture.
FILL_WEIGHTS = (0.7, 0.2, 0.1)
#: An object whose colour is this close (max over channels) to what lies under it is recoloured.
MIN_CONTRAST = 40.0
SMALLEST_DIAMETER = 3.0
#: Diameters below this are drawn only by the log-uniform share (SMALL_SHARE) of objects.
COMMON_DIAMETER = 6.0
SMALL_SHARE = 0.25


@dataclass
class Scenes:
    """images: (B, 3, H, W) uint8. objects: (B, K, H, W) bool visible masks, in drawing order;
    slots past an image's object count are empty."""

    images: Tensor
    objects: Tensor


def _choice(weights: tuple[float, ...], count: int, generator: torch.Generator) -> Tensor:
    return torch.multinomial(torch.tensor(weights), count, replacement=True, generator=generator)


def _diameters(count: int, largest: float, generator: torch.Generator) -> Tensor:
    """Diameters in pixels: a SMALL_SHARE log-uniform from SMALLEST_DIAMETER to `largest`, the
    rest uniform from COMMON_DIAMETER to `largest`."""
    low, high = math.log(SMALLEST_DIAMETER), math.log(largest)
    log_uniform = _uniform(generator, (count,), low, high).exp()
    uniform = _uniform(generator, (count,), COMMON_DIAMETER, largest)
    return torch.where(torch.rand(count, generator=generator) < SMALL_SHARE, log_uniform, uniform)


def outline_vertices(kinds: Tensor, generator: torch.Generator) -> tuple[Tensor, Tensor]:
    """Angles (N, V) in [0, 2 pi), sorted, and radii (N, V) of each object's outline vertices
    (used by polygons and stars), V = MAX_VERTICES, padded by repeating a vertex."""
    count = len(kinds)
    star = kinds == KINDS.index("star")
    sides = torch.randint(3, 9, (count,), generator=generator)
    points = torch.randint(4, 9, (count,), generator=generator)
    vertices = torch.where(star, 2 * points, sides)
    index = torch.arange(MAX_VERTICES)[None].expand(count, -1)
    irregular = (torch.rand(count, generator=generator) < 0.5) & ~star
    step = 2 * math.pi / vertices[:, None]
    jitter = _uniform(generator, (count, MAX_VERTICES), -0.2, 0.2) * irregular[:, None]
    angles = _uniform(generator, (count, 1), 0, 2 * math.pi) + (index + jitter) * step
    radii = torch.where(
        irregular[:, None], _uniform(generator, (count, MAX_VERTICES), 0.65, 1.0), 1.0
    )
    inner = _uniform(generator, (count, 1), 0.35, 0.65)
    radii = torch.where(star[:, None] & (index % 2 == 1), inner, radii)
    last = (vertices - 1)[:, None]
    valid = index < vertices[:, None]
    angles = torch.where(valid, angles, angles.gather(1, last)) % (2 * math.pi)
    radii = torch.where(valid, radii, radii.gather(1, last))
    angles, order = angles.sort(1)
    return angles, radii.gather(1, order)


def vertex_outline_radius(phi: Tensor, angles: Tensor, radii: Tensor) -> Tensor:
    """Radius (N, P) of a star-shaped polygon's boundary in the directions `phi` (N, P): the
    straight edge between the two vertices around each direction."""
    count = angles.shape[1]
    after = torch.searchsorted(angles.contiguous(), phi.contiguous(), right=True)
    start, end = (after - 1) % count, after % count
    theta_a, theta_b = angles.gather(1, start), angles.gather(1, end)
    r_a, r_b = radii.gather(1, start), radii.gather(1, end)
    span = (theta_b - theta_a) % (2 * math.pi)
    offset = (phi - theta_a) % (2 * math.pi)
    denominator = r_a * torch.sin(offset) + r_b * torch.sin(span - offset)
    return r_a * r_b * torch.sin(span) / denominator.clamp_min(1e-6)


def _local_frame(
    centres: Tensor, radius: Tensor, aspect: Tensor, turn: Tensor, height: int, width: int
) -> tuple[Tensor, Tensor]:
    """Each object's normalised coordinates (N, H * W) of every pixel centre: rotated by
    `turn`, x divided by `radius` and y by `radius * aspect`."""
    ys, xs = torch.meshgrid(torch.arange(height) + 0.5, torch.arange(width) + 0.5, indexing="ij")
    u = xs.flatten()[None] - centres[:, :1]
    v = ys.flatten()[None] - centres[:, 1:]
    cos, sin = turn.cos()[:, None], turn.sin()[:, None]
    x = (u * cos + v * sin) / radius[:, None]
    y = (-u * sin + v * cos) / (radius * aspect)[:, None]
    return x, y


def signed_distance(
    kinds: Tensor,
    x: Tensor,
    y: Tensor,
    scale: Tensor,
    generator: torch.Generator,
) -> Tensor:
    """Approximate distance (N, P) in pixels from each pixel to its object's edge, positive
    inside; `scale` (N,) turns normalised lengths into pixels. Each kind's outline is computed
    for the objects of that kind only."""
    count = len(kinds)
    angles, radii = outline_vertices(kinds, generator)
    harmonics = torch.arange(2, 5)[None, :, None]
    amplitude = _uniform(generator, (count, 3, 1), -0.3, 0.3) / harmonics * 2
    phase = _uniform(generator, (count, 3, 1), 0, 2 * math.pi)
    power = _uniform(generator, (count, 1), 3.0, 12.0)
    gap = torch.empty_like(x)
    rho = torch.hypot(x, y)
    ellipse = kinds == KINDS.index("ellipse")
    gap[ellipse] = 1 - rho[ellipse]
    rect = kinds == KINDS.index("rounded_rect")
    p = power[rect]
    gap[rect] = 1 - (x[rect].abs().pow(p) + y[rect].abs().pow(p)).pow(1 / p)
    vertex = (kinds == KINDS.index("polygon")) | (kinds == KINDS.index("star"))
    phi = torch.atan2(y[vertex], x[vertex]) % (2 * math.pi)
    gap[vertex] = vertex_outline_radius(phi, angles[vertex], radii[vertex]) - rho[vertex]
    blob = kinds == KINDS.index("blob")
    phi = torch.atan2(y[blob], x[blob])[:, None]
    wobble = (amplitude[blob] * torch.cos(harmonics * phi + phase[blob])).sum(1)
    gap[blob] = (1 + wobble) / (1 + amplitude[blob].abs().sum(1)) - rho[blob]
    return gap * scale[:, None]


def cut_holes(
    distance: Tensor,
    holed: Tensor,
    x: Tensor,
    y: Tensor,
    kinds: Tensor,
    scale: Tensor,
    generator: torch.Generator,
) -> Tensor:
    """`distance` (N, P) with an elliptic hole cut near the centre of each `holed` (N,) object:
    the hole is sized to stay inside the object's inner radius, and its pixels are outside."""
    count = len(kinds)
    inner = torch.tensor([0.5, 0.3, 1.0, 1.0, 0.4])[kinds]
    size = _uniform(generator, (count, 2), 0.25, 0.45) * inner[:, None]
    centre = _uniform(generator, (count, 2), -0.1, 0.1) * inner[:, None]
    size, centre = size[holed], centre[holed]
    hx = (x[holed] - centre[:, :1]) / size[:, :1]
    hy = (y[holed] - centre[:, 1:]) / size[:, 1:]
    hole = (torch.hypot(hx, hy) - 1) * (size.amin(1) * scale[holed])[:, None]
    distance = distance.clone()
    distance[holed] = torch.minimum(distance[holed], hole)
    return distance


def _fills(
    count: int, x: Tensor, y: Tensor, textures: Tensor, generator: torch.Generator
) -> Tensor:
    """Colours (N, 3, P) of each object: flat, a gradient across it, or a tinted texture."""
    kind = _choice(FILL_WEIGHTS, count, generator)[:, None, None]
    first, second = _uniform(generator, (2, count, 3, 1), 0, 255)
    angle = _uniform(generator, (count, 1), 0, 2 * math.pi)
    ramp = ((x * angle.cos() + y * angle.sin()).clamp(-1, 1) / 2 + 0.5)[:, None]
    gradient = first + ramp * (second - first)
    texture = 0.5 * textures + 0.5 * first
    textured = torch.where(kind == 1, gradient, texture)
    return torch.where(kind == 0, first.expand_as(gradient), textured)


def draw_scenes(
    batch: int,
    height: int,
    width: int,
    generator: torch.Generator,
    backgrounds: SceneBackgrounds,
    max_objects: int = 4,
) -> Scenes:
    """`batch` scenes of `height` x `width` pixels, each with 1 to `max_objects` objects."""
    pixels = height * width
    count = batch * max_objects
    background = backgrounds.sample(batch, height, width, generator)
    present = torch.arange(max_objects)[None] < torch.randint(
        1, max_objects + 1, (batch, 1), generator=generator
    )
    kinds = _choice(KIND_WEIGHTS, count, generator)
    diameter = _diameters(count, 0.5 * max(height, width), generator)
    radius = diameter / 2
    aspect = torch.where(kinds == KINDS.index("star"), 1.0, _uniform(generator, (count,), 0.5, 1.0))
    centres = torch.rand(count, 2, generator=generator) * torch.tensor([width, height])
    turn = _uniform(generator, (count,), 0, 2 * math.pi)
    holed = (torch.rand(count, generator=generator) < HOLE_SHARE) & (diameter >= HOLE_MIN_DIAMETER)
    holed &= kinds != KINDS.index("star")
    x, y = _local_frame(centres, radius, aspect, turn, height, width)
    scale = radius * aspect
    distance = signed_distance(kinds, x, y, scale, generator)
    distance = cut_holes(distance, holed, x, y, kinds, scale, generator)
    soft = (torch.rand(batch, generator=generator) < SOFT_EDGE_SHARE).repeat_interleave(max_objects)
    inside = (distance >= 0) & present.flatten()[:, None]
    cover = torch.where(soft[:, None], (distance + 0.5).clamp(0, 1), inside.float())
    cover = cover * present.flatten()[:, None]

    textures = background.roll(1, 0).flip(-1).flatten(2).repeat_interleave(max_objects, 0)
    fill = _fills(count, x, y, textures, generator)
    under = background.flatten(2).repeat_interleave(max_objects, 0)
    area = inside.sum(1).clamp_min(1)[:, None]
    gap = ((fill - under) * inside[:, None]).sum(2).abs() / area
    dull = gap.amax(1) < MIN_CONTRAST
    fill = torch.where(dull[:, None, None], (fill + 128) % 256, fill)
    alpha = torch.where(
        torch.rand(count, generator=generator) < TRANSLUCENT_SHARE,
        _uniform(generator, (count,), *ALPHA_RANGE),
        1.0,
    )

    image = background.flatten(2)
    weight = (cover * alpha[:, None]).view(batch, max_objects, 1, pixels)
    fill = fill.view(batch, max_objects, 3, pixels)
    masks = inside.view(batch, max_objects, pixels)
    for k in range(max_objects):
        image = image * (1 - weight[:, k]) + fill[:, k] * weight[:, k]
    covered_later = masks.flip(1).cumsum(1).flip(1) - masks.int()
    visible = masks & (covered_later == 0)
    images = image.round().clamp(0, 255).to(torch.uint8).view(batch, 3, height, width)
    return Scenes(images, visible.view(batch, max_objects, height, width))
