"""The SAM stand-in's training scenes: outlines where the geometry says, visible masks that do
not overlap, pixels that come from the objects over them, and one seed for one batch."""

from __future__ import annotations

import math

import pytest
import torch

from lit_gradcam.sam_training.scene_backgrounds import SceneBackgrounds
from lit_gradcam.sam_training.scenes import (
    KINDS,
    MAX_VERTICES,
    draw_scenes,
    outline_vertices,
    signed_distance,
    vertex_outline_radius,
)


@pytest.fixture(scope="module")
def backgrounds() -> SceneBackgrounds:
    return SceneBackgrounds()


def _scenes(backgrounds: SceneBackgrounds, seed: int = 0, batch: int = 24, size=(48, 64)):
    generator = torch.Generator().manual_seed(seed)
    return draw_scenes(batch, *size, generator, backgrounds, max_objects=4)


def test_a_square_s_outline_radius_is_its_apothem_and_circumradius() -> None:
    angles = torch.tensor([[0.25, 0.75, 1.25, 1.75]]) * math.pi  # corners at radius sqrt(2)
    radii = torch.full((1, 4), math.sqrt(2))
    phi = torch.tensor([[0.0, 0.5 * math.pi, 0.25 * math.pi, 1.9 * math.pi]])
    radius = vertex_outline_radius(phi, angles, radii)
    side = 1 / math.cos(0.1 * math.pi)  # 18 degrees off the axis, on the edge x = 1
    assert radius[0].tolist() == pytest.approx([1.0, 1.0, math.sqrt(2), side], abs=1e-5)


def test_outline_vertices_are_sorted_and_padded_by_repeating_a_real_vertex() -> None:
    generator = torch.Generator().manual_seed(3)
    kinds = torch.tensor([KINDS.index("polygon")] * 20 + [KINDS.index("star")] * 20)
    angles, radii = outline_vertices(kinds, generator)
    assert angles.shape == radii.shape == (40, MAX_VERTICES)
    assert (angles.diff(dim=1) >= 0).all() and (angles >= 0).all() and (angles < 2 * math.pi).all()
    distinct = [len({(round(a, 5), round(r, 5)) for a, r in zip(*row, strict=True)}) for row in
                zip(angles.tolist(), radii.tolist(), strict=True)]  # fmt: skip
    assert all(3 <= n <= 8 for n in distinct[:20])  # polygons: 3 to 8 sides
    assert all(n % 2 == 0 and 8 <= n <= 16 for n in distinct[20:])  # stars: 4 to 8 points
    stars = radii[20:]
    assert (stars.amax(1) == 1).all() and (stars.amin(1) < 0.7).all()


def test_an_ellipse_s_distance_is_positive_exactly_inside_it() -> None:
    generator = torch.Generator().manual_seed(0)
    x = torch.linspace(-2, 2, 41)[None]
    y = torch.zeros_like(x)
    distance = signed_distance(torch.tensor([KINDS.index("ellipse")]), x, y, torch.tensor([5.0]),
                               generator)  # fmt: skip
    assert torch.equal(distance[0] >= 0, x[0].abs() <= 1)
    assert distance[0, 20].item() == pytest.approx(5.0)  # the centre: one radius from the edge


def test_a_seed_fixes_the_batch(backgrounds: SceneBackgrounds) -> None:
    first, again, other = (_scenes(backgrounds, seed) for seed in (5, 5, 6))
    assert torch.equal(first.images, again.images) and torch.equal(first.objects, again.objects)
    assert not torch.equal(first.images, other.images)


@pytest.mark.parametrize("size", [(48, 64), (36, 64), (72, 96)])
def test_scenes_hold_one_to_four_visible_objects_that_never_overlap(
    backgrounds: SceneBackgrounds, size: tuple[int, int]
) -> None:
    scenes = _scenes(backgrounds, size=size, batch=64)
    assert scenes.images.shape == (64, 3, *size) and scenes.images.dtype == torch.uint8
    assert scenes.objects.shape == (64, 4, *size) and scenes.objects.dtype == torch.bool
    assert (scenes.objects.sum(1) <= 1).all()  # a pixel shows one object at most
    drawn = scenes.objects.flatten(2).any(2).sum(1)
    assert (drawn >= 1).all() and (drawn <= 4).all()
    assert set(drawn.tolist()) >= {2, 3, 4}
    # sizes from a few pixels to about half the image
    areas = scenes.objects.flatten(2).sum(2)
    areas = areas[areas > 0].float()
    assert areas.min() < 10 and areas.max() > 0.05 * size[0] * size[1]


def test_object_pixels_differ_from_the_background_around_them(
    backgrounds: SceneBackgrounds,
) -> None:
    """Objects are visible: the mean colour inside a big opaque object stands out from the
    ring of background pixels around it."""
    scenes = _scenes(backgrounds, batch=64)
    images = scenes.images.float()
    contrasts = []
    for b in range(64):
        for mask in scenes.objects[b]:
            if mask.sum() < 60:
                continue
            ring = torch.nn.functional.max_pool2d(mask[None, None].float(), 5, 1, 2)[0, 0] > 0
            ring &= ~scenes.objects[b].any(0)
            if ring.sum() < 20:
                continue
            inside = images[b][:, mask].mean(1)
            outside = images[b][:, ring].mean(1)
            contrasts.append((inside - outside).abs().amax().item())
    assert len(contrasts) > 10
    assert torch.tensor(contrasts).median() > 30
