"""Training prompts: points where the truth says, boxes near the shape, clicks on the errors."""

from __future__ import annotations

import pytest
import torch

from lit_gradcam.prompts.geometry import lookup, mask_boxes
from lit_gradcam.sam_training.prompts import (
    MODES,
    correction_clicks,
    jittered_boxes,
    sample_pixels,
    sample_prompts,
    split_modes,
)
from lit_gradcam.segmenters.base import Prompts


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
