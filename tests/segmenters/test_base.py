"""Prompts validation and padding."""

from __future__ import annotations

import pytest
import torch

from lit_gradcam.prompt_types import PAD_LABEL, Prompts


def _prompts(points, labels, boxes=None) -> Prompts:
    boxes = None if boxes is None else torch.tensor(boxes, dtype=torch.float)
    return Prompts(torch.tensor(points, dtype=torch.float), torch.tensor(labels), boxes)


def test_valid_prompts_pass() -> None:
    _prompts([[[0, 0], [63, 47]]], [[1, 0]], [[0, 0, 63, 47]]).validate(48, 64)


@pytest.mark.parametrize(
    ("prompts", "message"),
    [
        (
            Prompts(torch.zeros(2, 2), torch.ones(2, 2, dtype=torch.long)),
            r"points must be \(B, N, 2\)",
        ),
        (
            Prompts(torch.zeros(1, 2, 3), torch.ones(1, 2, dtype=torch.long)),
            r"points must be \(B, N, 2\)",
        ),
        (
            Prompts(torch.zeros(1, 2, 2), torch.ones(1, 3, dtype=torch.long)),
            r"labels must be \(B, N\)",
        ),
        (_prompts([[[1, 1], [2, 2]]], [[1, 2]]), r"labels must be 1 .* got \[2\]"),
        (_prompts([[[1, 1]]], [[-3]]), r"got \[-3\]"),
        (_prompts([[[64, 10]]], [[1]]), r"outside the 64x48 image"),
        (_prompts([[[10, -0.5]]], [[0]]), r"outside the 64x48 image"),
        (_prompts([[[1, 1]]], [[1]], [[0, 0, 5]]), r"boxes must be \(B, 4\)"),
        (_prompts([[[1, 1]]], [[1]], [[5, 0, 4, 3]]), r"x0 <= x1"),
    ],
)
def test_invalid_prompts_raise_clear_errors(prompts: Prompts, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        prompts.validate(48, 64)


def test_padding_points_may_lie_anywhere() -> None:
    _prompts([[[10, 10], [-100, 999]]], [[1, PAD_LABEL]]).validate(48, 64)


def test_from_lists_pads_and_select_drops_padding() -> None:
    prompts = Prompts.from_lists(
        [torch.tensor([[1.0, 2.0]]), torch.tensor([[3.0, 4.0], [5.0, 6.0]])],
        [torch.tensor([1]), torch.tensor([1, 0])],
    )
    assert prompts.labels.tolist() == [[1, PAD_LABEL], [1, 0]]
    first = prompts.select(0)
    assert first.points.tolist() == [[[1.0, 2.0]]] and first.labels.tolist() == [[1]]
    assert prompts.select(1).points.shape == (1, 2, 2)
