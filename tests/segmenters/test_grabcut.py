"""GrabCutSegmenter: accurate from one centroid point, deterministic, and never crashing."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from scipy import ndimage

from lit_gradcam.data import ShapesFolder, generate_dataset
from lit_gradcam.imaging import denormalize_to_uint8
from lit_gradcam.prompt_types import Prompts
from lit_gradcam.prompts.base import foreground_points
from lit_gradcam.prompts.geometry import snap_to_mask, weighted_centroid
from lit_gradcam.segmenters import grabcut
from lit_gradcam.segmenters.grabcut import (
    GrabCutSegmenter,
    boundary_step,
    covers_border,
    refine_edges,
)

HEIGHT, WIDTH = 48, 64


def _scene(alpha: float, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """A flat-coloured disc (alpha-blended) over a smooth random background: image, mask."""
    rng = np.random.default_rng(seed)
    small = rng.integers(0, 256, (4, 6, 3)).astype(np.float32)
    background = torch.nn.functional.interpolate(
        torch.from_numpy(small).permute(2, 0, 1)[None], (HEIGHT, WIDTH), mode="bicubic"
    )[0].clamp(0, 255)
    ys, xs = torch.meshgrid(torch.arange(HEIGHT), torch.arange(WIDTH), indexing="ij")
    cx, cy = rng.uniform(15, WIDTH - 15), rng.uniform(15, HEIGHT - 15)
    mask = (xs - cx) ** 2 + (ys - cy) ** 2 <= 8**2
    colour = torch.from_numpy(rng.integers(0, 256, 3).astype(np.float32))[:, None]
    image = background.clone()
    image[:, mask] = alpha * colour + (1 - alpha) * background[:, mask]
    return image.round().to(torch.uint8), mask


def _ring_scene(alpha: float, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """A flat-coloured ring (outer radius 10, hole radius 5, alpha-blended) over a smooth random
    background: image, mask (the ring without its hole)."""
    image, disc = _scene(0.0, seed)  # the background alone, and where the scene's disc would be
    rng = np.random.default_rng(seed)
    ys, xs = torch.meshgrid(torch.arange(HEIGHT), torch.arange(WIDTH), indexing="ij")
    cy, cx = torch.nonzero(disc).float().mean(0).tolist()
    distance = ((xs - cx) ** 2 + (ys - cy) ** 2).sqrt()
    mask = (distance <= 10) & (distance > 5)
    colour = torch.from_numpy(rng.integers(0, 256, 3).astype(np.float32))[:, None]
    image = image.float()
    image[:, mask] = alpha * colour + (1 - alpha) * image[:, mask]
    return image.round().to(torch.uint8), mask


def _two_tone_scene(seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """A thin crescent beside a disc, both flat-coloured, on the wavy edge between two noisy
    background colours (as a photo's regions are): image, the crescent's mask. A prior disc
    around a prompt on the crescent takes in both background colours."""
    rng = np.random.default_rng(seed)
    ys, xs = torch.meshgrid(torch.arange(HEIGHT), torch.arange(WIDTH), indexing="ij")
    cx, cy, r = rng.uniform(20, WIDTH - 28), rng.uniform(15, HEIGHT - 15), rng.uniform(6, 9)
    above, below = (
        torch.from_numpy(rng.integers(0, 256, 3).astype(np.float32))[:, None, None]
        for _ in range(2)
    )
    noise = torch.from_numpy(rng.normal(0, 6, (3, HEIGHT, WIDTH)).astype(np.float32))
    image = torch.where((ys < cy + 2 * torch.sin(xs / 7.0))[None], above, below) + noise
    disc = (xs - cx) ** 2 + (ys - cy) ** 2 <= r**2
    crescent = disc & ((xs - cx - 0.6 * r) ** 2 + (ys - cy) ** 2 > (0.8 * r) ** 2)
    beside = (xs - cx - 1.6 * r) ** 2 + (ys - cy) ** 2 <= (0.8 * r) ** 2
    for mask in (crescent, beside):
        image[:, mask] = torch.from_numpy(rng.integers(0, 256, 3).astype(np.float32))[:, None]
    return image.clamp(0, 255).round().to(torch.uint8), crescent


def _scenes(alpha: float, seeds, scene=_scene) -> tuple[torch.Tensor, torch.Tensor]:
    images, masks = zip(*[scene(alpha, seed) for seed in seeds], strict=True)
    return torch.stack(images), torch.stack(masks)


def _anti_aliased_scene(alpha: float, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """A square turned by a random angle over a smooth background, each pixel blended by the
    share of it the square covers (8 x 8 samples), and its mask: coverage >= 0.5."""
    rng = np.random.default_rng(seed)
    small = rng.integers(0, 256, (4, 6, 3)).astype(np.float32)
    background = torch.nn.functional.interpolate(
        torch.from_numpy(small).permute(2, 0, 1)[None], (HEIGHT, WIDTH), mode="bicubic"
    )[0].clamp(0, 255)
    samples = (np.arange(8) + 0.5) / 8
    ys = (np.arange(HEIGHT)[:, None] + samples).ravel()
    xs = (np.arange(WIDTH)[:, None] + samples).ravel()
    cx, cy, half = rng.uniform(20, WIDTH - 20), rng.uniform(18, HEIGHT - 18), rng.uniform(5, 8)
    turn = rng.uniform(0, np.pi / 2)
    u = (xs[None] - cx) * np.cos(turn) + (ys[:, None] - cy) * np.sin(turn)
    v = -(xs[None] - cx) * np.sin(turn) + (ys[:, None] - cy) * np.cos(turn)
    inside = (np.abs(u) <= half) & (np.abs(v) <= half)
    coverage = torch.from_numpy(inside.reshape(HEIGHT, 8, WIDTH, 8).mean((1, 3))).float()
    colour = torch.from_numpy(rng.integers(0, 256, 3).astype(np.float32))[:, None, None]
    weight = alpha * coverage
    image = background * (1 - weight) + colour * weight
    return image.round().to(torch.uint8), coverage >= 0.5


def _xy(mask: torch.Tensor) -> torch.Tensor:
    """(n, 2) x, y coordinates of the pixels of a (H, W) mask."""
    return torch.nonzero(mask).flip(1)


def _iou(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    return (pred & target).flatten(1).sum(1) / (pred | target).flatten(1).sum(1).clamp_min(1)


def _centroid_prompts(masks: torch.Tensor) -> Prompts:
    return foreground_points(snap_to_mask(weighted_centroid(masks.float()), masks))


def _points(points, labels) -> Prompts:
    return Prompts(torch.tensor(points, dtype=torch.float), torch.tensor(labels))


@pytest.mark.parametrize("alpha", [1.0, 0.6])
def test_centroid_point_segments_synthetic_discs(alpha: float) -> None:
    images, masks = _scenes(alpha, range(8))
    segmenter = GrabCutSegmenter()
    pred, scores = segmenter.predict(segmenter.embed(images), _centroid_prompts(masks))
    assert pred.shape == masks.shape and pred.dtype == torch.bool
    assert scores.shape == (8,) and ((scores > 0) & (scores <= 1)).all()
    assert _iou(pred, masks).mean() >= 0.9


@pytest.mark.parametrize("alpha", [1.0, 0.7])
def test_anti_aliased_edges_follow_half_coverage(alpha: float) -> None:
    """GrabCut alone puts the ring of partly covered edge pixels wholly on one side; re-deciding
    them by coverage recovers the coverage >= 0.5 mask."""
    images, masks = _scenes(alpha, range(24), _anti_aliased_scene)
    prompts = _centroid_prompts(masks)
    segmenter = GrabCutSegmenter()
    pred, _ = segmenter.predict(segmenter.embed(images), prompts)
    plain = GrabCutSegmenter(edge_radius=0)
    unrefined, _ = plain.predict(plain.embed(images), prompts)
    assert _iou(pred, masks).mean() >= 0.98
    assert (pred ^ masks).sum() <= 0.75 * (unrefined ^ masks).sum()


@pytest.mark.parametrize(("covered", "cut_width"), [(0.6, 5), (0.4, 6)])
def test_refine_edges_decides_a_mixed_pixel_by_its_coverage(covered: float, cut_width: int):
    """A vertical edge: foreground 200 in columns 0-4, column 5 partly covered, background 0
    after. Whichever side the cut put column 5 on, it ends up inside iff covered >= 0.5, except
    a pixel whose colour is no mix of the two sides (texture), which keeps the cut's label."""
    image = np.zeros((12, 12, 3), np.uint8)
    image[:, :5] = 200
    image[:, 5] = round(200 * covered)
    image[6, 5] = (0, 200, 0)
    mask = np.zeros((12, 12), bool)
    mask[:, :cut_width] = True
    refined = refine_edges(image, mask, 2)
    mixed = np.arange(12) != 6
    assert refined[:, :5].all() and not refined[:, 6:].any()
    assert (refined[mixed, 5] == (covered >= 0.5)).all()
    assert refined[6, 5] == mask[6, 5]


def test_deterministic() -> None:
    images, masks = _scenes(0.7, range(4))
    prompts = _centroid_prompts(masks)
    first = GrabCutSegmenter().predict(GrabCutSegmenter().embed(images), prompts)
    segmenter = GrabCutSegmenter()
    state = segmenter.embed(images)
    for _ in range(2):
        again = segmenter.predict(state, prompts)
        assert torch.equal(first[0], again[0]) and torch.equal(first[1], again[1])


@pytest.mark.parametrize(
    "prompts",
    [
        Prompts(torch.zeros(1, 0, 2), torch.zeros(1, 0, dtype=torch.long)),  # nothing
        _points([[[10, 10], [50, 30]]], [[0, 0]]),  # background only
        _points([[[0, 0], [10, 10]]], [[-1, -1]]),  # padding only
    ],
)
def test_no_foreground_prompt_gives_empty_mask(prompts: Prompts) -> None:
    image, _ = _scene(1.0, 0)
    segmenter = GrabCutSegmenter()
    masks, scores = segmenter.predict(segmenter.embed(image[None]), prompts)
    assert not masks.any() and scores.tolist() == [0.0]


@pytest.mark.parametrize(
    ("image", "prompts"),
    [
        (_scene(1.0, 1)[0], _points([[[0, 0]]], [[1]])),  # corner point
        (_scene(1.0, 1)[0], _points([[[63, 47], [0, 47]]], [[1, 0]])),  # opposite corners
        (torch.full((3, HEIGHT, WIDTH), 90, dtype=torch.uint8), _points([[[30, 20]]], [[1]])),
        (
            _scene(1.0, 2)[0],
            Prompts(
                torch.zeros(1, 0, 2),
                torch.zeros(1, 0, dtype=torch.long),
                torch.tensor([[0.0, 0.0, 63.0, 47.0]]),
            ),
        ),  # whole-image box
        (_scene(1.0, 2)[0][:, :5, :5], _points([[[2, 2]]], [[1]])),  # the disc fills the image
        (_scene(1.0, 2)[0][:, :3, :4], _points([[[1, 1], [3, 2]]], [[1, 0]])),
    ],
)
def test_degenerate_inputs_do_not_crash(image: torch.Tensor, prompts: Prompts) -> None:
    segmenter = GrabCutSegmenter()
    masks, scores = segmenter.predict(segmenter.embed(image[None]), prompts)
    assert masks.shape == (1, *image.shape[1:]) and 0 <= scores.item() <= 1


def test_box_prompts_in_a_padded_batch() -> None:
    images, masks = _scenes(1.0, range(3))
    boxes = torch.stack(
        [torch.cat([xy.min(0).values - 2, xy.max(0).values + 2]) for xy in map(_xy, masks)]
    )
    centre = weighted_centroid(masks.float())
    prompts = Prompts.from_lists(  # box only; box and point; box, point and background point
        [torch.zeros(0, 2), centre[1:2], torch.stack([centre[2], torch.tensor([1.0, 1.0])])],
        [torch.zeros(0), torch.ones(1), torch.tensor([1, 0])],
        boxes.float(),
    )
    segmenter = GrabCutSegmenter()
    pred, _ = segmenter.predict(segmenter.embed(images), prompts)
    assert (_iou(pred, masks) >= 0.9).all()


def test_boundary_step() -> None:
    image = np.zeros((4, 4, 3), np.uint8)
    image[:, 2:] = 255
    assert boundary_step(image, image[..., 0] > 0) == pytest.approx(1.0)
    assert boundary_step(image, np.ones((4, 4), bool)) == 0.0


def test_invalid_arguments_and_inputs() -> None:
    with pytest.raises(ValueError, match="iterations"):
        GrabCutSegmenter(iterations=0)
    with pytest.raises(ValueError, match="edge_radius=-1"):
        GrabCutSegmenter(edge_radius=-1)
    with pytest.raises(ValueError, match="object_point_radius=-1"):
        GrabCutSegmenter(object_point_radius=-1)
    with pytest.raises(ValueError, match="object_rim_depth=-0.5"):
        GrabCutSegmenter(object_rim_depth=-0.5)
    segmenter = GrabCutSegmenter()
    with pytest.raises(ValueError, match="uint8"):
        segmenter.embed(torch.zeros(1, 3, 8, 8))
    state = segmenter.embed(torch.zeros(2, 3, 8, 8, dtype=torch.uint8))
    with pytest.raises(ValueError, match="1 prompt sets for 2 images"):
        segmenter.predict(state, _points([[[1, 1]]], [[1]]))
    with pytest.raises(ValueError, match="outside"):
        segmenter.predict(state, _points([[[8, 1]], [[1, 1]]], [[1], [1]]))


def test_ceiling_on_generated_test_split(tmp_path: Path) -> None:
    """One point at each mask's centre of mass: the full 500-image test split reaches >= 0.95
    (benchmarks/grabcut_ceiling.py); 50 images must reach 0.9."""
    root = generate_dataset(tmp_path / "shapes", {"test": 50}, seed=0, progress=False)
    dataset = ShapesFolder(root, "test")
    images = denormalize_to_uint8(torch.stack([dataset[i][0] for i in range(len(dataset))]))
    masks = torch.stack([dataset[i][2] for i in range(len(dataset))])
    segmenter = GrabCutSegmenter()
    pred, _ = segmenter.predict(segmenter.embed(images), _centroid_prompts(masks))
    assert _iou(pred, masks).mean() >= 0.9


@pytest.mark.parametrize("alpha", [1.0, 0.6])
def test_radii_scale_with_the_image(alpha: float) -> None:
    """The same scenes upscaled 5x (as photos given to `predict`) are cut as well."""
    images, masks = _scenes(alpha, range(4))
    big_images = torch.nn.functional.interpolate(images.float(), scale_factor=5, mode="nearest")
    big_masks = torch.nn.functional.interpolate(masks[:, None].float(), scale_factor=5)[:, 0] > 0
    segmenter = GrabCutSegmenter()
    small, _ = segmenter.predict(segmenter.embed(images), _centroid_prompts(masks))
    big, _ = segmenter.predict(
        segmenter.embed(big_images.to(torch.uint8)), _centroid_prompts(big_masks)
    )
    assert _iou(big, big_masks).mean() >= 0.9
    assert _iou(big, big_masks).mean() >= _iou(small, masks).mean() - 0.03


def test_images_over_max_side_are_cut_shrunk_with_masks_at_their_own_size() -> None:
    """Scenes upscaled 10x (640 px wide, over the default `max_side`) are cut at 512 px with
    their prompts scaled alike; the masks come back at 480x640 and match a full-size cut."""
    images, masks = _scenes(1.0, range(2))
    big_images = torch.nn.functional.interpolate(images.float(), scale_factor=10, mode="nearest")
    big_masks = torch.nn.functional.interpolate(masks[:, None].float(), scale_factor=10)[:, 0] > 0
    big_images, prompts = big_images.to(torch.uint8), _centroid_prompts(big_masks)
    shrunk = GrabCutSegmenter()
    state = shrunk.embed(big_images)
    assert state.images[0].shape[:2] == (384, 512)
    cut, _ = shrunk.predict(state, prompts)
    full_size = GrabCutSegmenter(max_side=None)
    reference, _ = full_size.predict(full_size.embed(big_images), prompts)
    assert cut.shape == big_masks.shape
    assert _iou(cut, big_masks).min() >= 0.95
    assert _iou(cut, reference).min() >= 0.95


def test_a_max_side_below_the_dataset_height_is_refused() -> None:
    with pytest.raises(ValueError, match="max_side must be at least 48"):
        GrabCutSegmenter(max_side=32)


def test_selected_images_cut_as_if_embedded_alone() -> None:
    """`select` picks images out of a state (repeats allowed), for several objects per image."""
    first, _ = _scene(1.0, seed=0)
    second, _ = _scene(1.0, seed=1)
    images = torch.stack([first, second])
    segmenter = GrabCutSegmenter()
    index = torch.tensor([1, 1, 0])
    prompts = foreground_points(torch.tensor([[20.0, 20.0], [40.0, 30.0], [32.0, 24.0]]))
    masks, _ = segmenter.predict(segmenter.select(segmenter.embed(images), index), prompts)
    for row, image in enumerate(index.tolist()):
        state = segmenter.embed(images[image : image + 1])
        alone, _ = segmenter.predict(state, prompts.select(row))
        assert torch.equal(masks[row], alone[0])


def test_class_maps_cut_with_the_object_seed_so_a_prompt_by_the_rim_takes_no_background() -> None:
    """A prompt 2 px inside a disc's rim, as per-object prompts often sit: the default 3 px seed
    disc reaches past the rim and claims background as definite foreground; the class-map
    path's (`for_class_maps`, 1 px) stays on the object and cuts it whole."""
    images, masks = _scenes(1.0, range(8))
    points = []
    for mask in masks.numpy():
        ys, xs = np.nonzero(ndimage.distance_transform_edt(mask) == 2)
        points.append([float(xs[0]), float(ys[0])])
    prompts = foreground_points(torch.tensor(points))
    segmenter = GrabCutSegmenter()
    objects = segmenter.for_class_maps()
    assert (segmenter.point_radius, objects.point_radius) == (3, 1)
    default_cut, _ = segmenter.predict(segmenter.embed(images), prompts)
    objects_cut, _ = objects.predict(objects.embed(images), prompts)
    assert _iou(objects_cut, masks).min() >= 0.99
    assert (objects_cut & ~masks).sum() < (default_cut & ~masks).sum()
    assert _iou(objects_cut, masks).mean() > _iou(default_cut, masks).mean()


def test_class_maps_recut_a_ring_prompted_in_its_hole_from_its_rim() -> None:
    """A prompt at a ring's centre, in its hole, as per-object prompts often land: the seed is
    definite foreground, so a cut without the rim re-cut fills the hole; the class-map path's
    re-cut (`object_rim_depth`) gives the hole back to the background."""
    images, masks = _scenes(1.0, range(8), _ring_scene)
    centres = torch.stack([_xy(disc).float().mean(0) for disc in masks])
    prompts = foreground_points(centres)
    objects = GrabCutSegmenter().for_class_maps()
    no_recut = GrabCutSegmenter(object_rim_depth=0).for_class_maps()
    cut, _ = objects.predict(objects.embed(images), prompts)
    filled, _ = no_recut.predict(no_recut.embed(images), prompts)
    holes = ndimage.binary_fill_holes(masks.numpy(), structure=np.ones((1, 3, 3))) & ~masks.numpy()
    assert _iou(cut, masks).mean() >= 0.9
    assert filled[torch.from_numpy(holes)].float().mean() > 0.9  # without it: the hole is kept
    assert cut[torch.from_numpy(holes)].float().mean() < 0.1


@pytest.mark.parametrize("alpha", [1.0, 0.6])
def test_the_rim_recut_keeps_solid_discs_whole(alpha: float) -> None:
    """A solid (or translucent) disc has no inside that looks like the outside: the re-cut from
    its rim keeps it whole, as the single-object cut does."""
    images, masks = _scenes(alpha, range(8))
    prompts = _centroid_prompts(masks)
    objects = GrabCutSegmenter().for_class_maps()
    assert objects.rim_depth == GrabCutSegmenter().object_rim_depth > 0
    assert GrabCutSegmenter().rim_depth == 0
    cut, _ = objects.predict(objects.embed(images), prompts)
    assert _iou(cut, masks).min() >= 0.9


def test_covers_border() -> None:
    disc = _scene(1.0, 0)[1].numpy()
    side = np.zeros((HEIGHT, WIDTH), dtype=bool)
    side[-5:] = True  # an object along the whole bottom edge: a third of the border
    assert not covers_border(disc) and covers_border(~disc)
    assert not covers_border(side) and covers_border(~side)


@pytest.mark.parametrize("seed", [30, 37])
def test_a_cut_that_takes_the_background_is_never_kept(seed: int, monkeypatch) -> None:
    """Prompts on a crescent between two background colours: for some of them GrabCut's cut
    takes the background (the complement of the objects) and wins on its boundary step, which
    is the objects' own; the segmenter keeps an object mask instead."""
    image, crescent = _two_tone_scene(seed)
    points = _xy(crescent).float()
    segmenter = GrabCutSegmenter().for_class_maps()
    state = segmenter.select(segmenter.embed(image[None]), torch.zeros(len(points)).long())
    prompts = foreground_points(points)
    masks, _ = segmenter.predict(state, prompts)
    monkeypatch.setattr(grabcut, "covers_border", lambda mask: False)
    unguarded, _ = segmenter.predict(state, prompts)
    took_background = torch.tensor([covers_border(mask) for mask in unguarded.numpy()])
    assert took_background.sum() >= 10
    assert not any(covers_border(mask) for mask in masks.numpy())
    assert _iou(masks[took_background], crescent[None]).mean() >= 0.6
