"""Training prompts: points where the truth says, boxes near the shape, clicks on the errors."""

from __future__ import annotations

import pytest
import torch

from lit_gradcam.prompt_types import Prompts
from lit_gradcam.prompts.geometry import lookup, mask_boxes
from lit_gradcam.sam_training.prompts import (
    MODES,
    choose_targets,
    correction_clicks,
    jittered_boxes,
    largest_object,
    near_background,
    sample_pixels,
    sample_prompts,
    split_modes,
)


def _masks(batch: int = 6, height: int = 48, width: int = 64) -> torch.Tensor:
    """Rectangles of different sizes and places."""
    masks = torch.zeros(batch, height, width, dtype=torch.bool)
    for index in range(batch):
        masks[index, 5 + index : 20 + 3 * index, 10 + 2 * index : 30 + 4 * index] = True
    return masks


def test_sample_pixels_stay_in_their_region_and_fall_back_to_the_image() -> None:
    torch.manual_seed(0)
    masks = _masks()
    masks[2] = False
    points = sample_pixels(masks, 50)
    assert points.shape == (6, 50, 2)
    inside = lookup(masks, points)
    assert inside[[0, 1, 3, 4, 5]].all()
    assert (points[2, :, 0] <= 63).all() and (points[2, :, 1] <= 47).all()
    assert points[2].unique(dim=0).shape[0] > 1  # the whole image, not one pixel
    assert sample_pixels(masks, 0).shape == (6, 0, 2)


@pytest.mark.parametrize("mode", MODES)
def test_sample_prompts_follow_the_mode(mode: str) -> None:
    torch.manual_seed(1)
    masks = _masks()
    for _ in range(5):
        prompts = sample_prompts(masks, mode, max_points=3, jitter=0.1, max_jitter=20.0)
        prompts.validate(48, 64)
        labels = prompts.labels
        assert (lookup(masks, prompts.points) == (labels == 1)).all()
        n_fg, n_bg = int((labels[0] == 1).sum()), int((labels[0] == 0).sum())
        expected = {
            "point": (1, 1, 0, 0),
            "box_point": (1, 1, 0, 0),
            "box": (0, 0, 0, 0),
            "points": (2, 3, 0, 0),
            "points_background": (1, 3, 1, 3),
        }[mode]
        assert expected[0] <= n_fg <= expected[1] and expected[2] <= n_bg <= expected[3]
        assert (prompts.boxes is not None) == mode.startswith("box")


def test_jittered_boxes_stay_near_the_shape_inside_the_image() -> None:
    torch.manual_seed(2)
    masks = _masks()
    tight = mask_boxes(masks)
    boxes = torch.stack([jittered_boxes(masks, 0.1, 20.0) for _ in range(200)])
    assert (boxes[..., :2] <= boxes[..., 2:]).all()
    assert (
        boxes.min() >= 0 and (boxes[..., [0, 2]] <= 63).all() and (boxes[..., [1, 3]] <= 47).all()
    )
    assert not torch.equal(boxes[0], tight)
    assert (boxes.mean(0) - tight).abs().max() < 1.5
    assert torch.equal(jittered_boxes(masks, 0.0, 20.0), tight)


def test_correction_click_lands_on_the_error_with_the_truth_as_label() -> None:
    torch.manual_seed(3)
    masks = _masks(2)
    predicted = masks.clone()
    predicted[0] = False  # image 0: everything missed -> a foreground click inside the shape
    predicted[1, 0:3, 0:3] = True  # image 1: a spill in a corner -> a background click there
    base = Prompts(torch.full((2, 1, 2), 20.0), torch.ones(2, 1, dtype=torch.long))
    for _ in range(20):
        clicked = correction_clicks(base, predicted, masks)
        assert clicked.points.shape == (2, 2, 2)
        assert torch.equal(clicked.points[:, :1], base.points)
        assert clicked.labels[:, 1].tolist() == [1, 0]
        assert lookup(masks[:1], clicked.points[:1, 1:]).all()
        assert (clicked.points[1, 1] <= 2).all()


def test_split_modes_share_the_batch_by_the_mix() -> None:
    torch.manual_seed(4)
    groups = split_modes(10, {"point": 0.5, "box": 0.3, "points": 0.2, "box_point": 0.0}, "cpu")
    assert {name: len(index) for name, index in groups.items()} == {
        "point": 5,
        "box": 3,
        "points": 2,
    }
    assert sorted(torch.cat(list(groups.values())).tolist()) == list(range(10))
    uneven = split_modes(3, {"point": 1.0, "box": 1.0}, "cpu")
    assert sorted(len(index) for index in uneven.values()) == [1, 2]


def _two_object_scenes(batch: int = 8) -> torch.Tensor:
    """(B, 3, 48, 64) object masks: two rectangles, one partly covered (visible part only), and
    a slot left empty."""
    objects = torch.zeros(batch, 3, 48, 64, dtype=torch.bool)
    objects[:, 0, 5:25, 5:30] = True
    objects[:, 1, 15:40, 20:50] = True
    objects[:, 0] &= ~objects[:, 1]  # the second rectangle lies over the first
    return objects


@pytest.mark.parametrize("mode", ["point", "points", "points_background"])
def test_each_point_targets_the_object_under_it_or_nothing_just_beside_one(mode: str) -> None:
    torch.manual_seed(2)
    objects = _two_object_scenes(64)
    targets, regions, on_background = choose_targets(objects, background_share=0.3, band=4)
    assert 5 < on_background.sum() < 40
    prompts = sample_prompts(regions, mode, max_points=3, jitter=0.1, max_jitter=20.0)
    union = objects.any(1)
    for b in range(64):
        foreground = prompts.points[b][prompts.labels[b] == 1]
        under = [lookup(objects[b, k][None], foreground[None])[0] for k in range(3)]
        if on_background[b]:
            assert not targets[b].any()  # nothing to return
            assert not any(hit.any() for hit in under)  # every point on no object ...
            for x, y in foreground.long().tolist():  # ... but at most 4 pixels from one
                assert union[b, max(y - 4, 0) : y + 5, max(x - 4, 0) : x + 5].any()
        else:
            (k,) = [k for k in range(3) if torch.equal(targets[b], objects[b, k])]
            assert torch.equal(regions[b], targets[b])
            assert under[k].all()  # every point on the target, the target's visible part
        ground = prompts.points[b][prompts.labels[b] == 0]
        assert not lookup(regions[b][None], ground[None]).any()


def test_targets_are_objects_only_when_the_background_share_is_zero() -> None:
    torch.manual_seed(3)
    objects = _two_object_scenes(200)
    targets, _, on_background = choose_targets(objects, background_share=0.0, band=5)
    assert not on_background.any()
    picked = [int(torch.equal(targets[b], objects[b, 1])) for b in range(200)]
    assert 60 < sum(picked) < 140  # both objects, about evenly; never the empty slot
    empty, regions, flags = choose_targets(objects, background_share=1.0, band=5)
    assert flags.all() and not empty.any()
    assert torch.equal(regions, near_background(objects, 5))


def test_an_image_with_no_object_big_enough_gets_no_target() -> None:
    objects = torch.zeros(2, 2, 10, 10, dtype=torch.bool)
    objects[0, 0, 0, 0] = True  # one pixel: too small to be a target
    objects[1, 1, 2:6, 2:6] = True
    targets, regions, on_background = choose_targets(objects, background_share=0.0, band=5)
    assert on_background.tolist() == [True, False]
    assert torch.equal(targets[1], objects[1, 1]) and not targets[0].any()
    assert regions[0].sum() == 6 * 6 - 1  # around the pixel, up to 5 away, in the corner


def test_near_background_is_the_ring_of_no_object_within_the_band() -> None:
    objects = torch.zeros(1, 2, 20, 20, dtype=torch.bool)
    objects[0, 0, 10, 10] = True
    objects[0, 1, 10, 11] = True  # a second object beside it: part of the union, not the ring
    near = near_background(objects, 2)[0]
    expected = torch.zeros(20, 20, dtype=torch.bool)
    expected[8:13, 8:14] = True
    expected[10, 10:12] = False
    assert torch.equal(near, expected)


def test_largest_object_is_the_one_with_most_visible_pixels() -> None:
    objects = _two_object_scenes(3)
    assert torch.equal(largest_object(objects), objects[:, 1])
