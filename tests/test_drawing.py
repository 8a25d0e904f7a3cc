"""Drawing: prompts land where they should, outlines and colours read right, grids have the
right layout."""

import pytest
import torch

from lit_gradcam.drawing import (
    BACKGROUND_COLOUR,
    FOREGROUND_COLOUR,
    MASK_COLOUR,
    draw_prompts,
    heat_colours,
    mask_outline,
    pipeline_grid,
)
from lit_gradcam.prompt_types import Prompts


def _grey(batch: int = 1, height: int = 12, width: int = 16) -> torch.Tensor:
    return torch.full((batch, 3, height, width), 128, dtype=torch.uint8)


def test_points_are_drawn_in_their_colours_and_padding_is_not() -> None:
    prompts = Prompts(
        torch.tensor([[[3.0, 4.0], [12.0, 8.0], [8.0, 2.0]]]), torch.tensor([[1, 0, -1]])
    )
    out = draw_prompts(_grey(), prompts, radius=1)
    assert out[0, :, 4, 3].tolist() == list(FOREGROUND_COLOUR)  # (x=3, y=4) -> row 4, col 3
    assert out[0, :, 8, 12].tolist() == list(BACKGROUND_COLOUR)
    assert out[0, :, 2, 8].tolist() == [128, 128, 128]  # padding point not drawn
    assert out[0, :, 0, 0].tolist() == [128, 128, 128]


def test_mask_outline_paints_only_the_inner_boundary() -> None:
    masks = torch.zeros(1, 12, 16, dtype=torch.bool)
    masks[0, 3:9, 4:10] = True
    out = mask_outline(_grey(), masks)
    assert out[0, :, 3, 5].tolist() == list(MASK_COLOUR)  # on the edge
    assert out[0, :, 5, 6].tolist() == [128, 128, 128]  # inside
    assert out[0, :, 1, 1].tolist() == [128, 128, 128]  # outside


def test_heat_colours_run_from_blue_to_red() -> None:
    colours = heat_colours(torch.tensor([[[0.0, 1.0]]]))
    assert colours[0, 2, 0, 0] > colours[0, 0, 0, 0]  # cold: more blue than red
    assert colours[0, 0, 0, 1] > colours[0, 2, 0, 1]  # hot: more red than blue


def test_grid_has_five_upscaled_panels_per_image() -> None:
    batch, scale = 3, 4
    prompts = Prompts(torch.zeros(batch, 1, 2), torch.ones(batch, 1, dtype=torch.long))
    masks = torch.zeros(batch, 12, 16, dtype=torch.bool)
    grid = pipeline_grid(_grey(batch), torch.rand(batch, 12, 16), prompts, masks, masks, scale)
    assert grid.dtype == torch.uint8
    assert grid.shape == (3, batch * (12 * scale + 2) + 2, 5 * (16 * scale + 2) + 2)


@pytest.mark.parametrize("width", [1, 3, 8])
def test_mask_outline_is_the_band_a_square_window_finds(width: int) -> None:
    """The outline is the mask's pixels within `width` (a square window) of a pixel outside it,
    as one square max-pool over the outside finds them."""
    torch.manual_seed(0)
    masks = torch.rand(2, 30, 40) > 0.6
    outside = (~masks)[:, None].float()
    window = torch.nn.functional.max_pool2d(outside, 2 * width + 1, stride=1, padding=width)
    band = masks & (window[:, 0] > 0)
    out = mask_outline(_grey(2, 30, 40), masks, width)
    painted = (out != 128).any(1)
    assert torch.equal(painted, band)


def test_class_colours_are_voc_palette_and_overlays_tint_only_classes() -> None:
    from lit_gradcam.class_map_drawing import class_colours, class_map_overlay, legend

    colours = class_colours(16).tolist()
    assert colours[0] == [0, 0, 0] and colours[1] == [128, 0, 0] and colours[2] == [0, 128, 0]
    assert colours[4] == [0, 0, 128] and colours[15] == [192, 128, 128]  # VOC's "person"
    images = torch.full((1, 3, 4, 5), 100, dtype=torch.uint8)
    maps = torch.zeros(1, 4, 5, dtype=torch.uint8)
    maps[0, 1, 1], maps[0, 2, 2], maps[0, 3, 3] = 1, 2, 255
    tinted = class_map_overlay(images, maps, num_classes=2)
    assert torch.equal(tinted[0, :, 0, 0], images[0, :, 0, 0])  # background untouched
    assert tinted[0, 0, 1, 1] > 100 and tinted[0, 1, 1, 1] < 100  # class 1 reddish
    assert tinted[0, 1, 2, 2] > 100 and tinted[0, 0, 2, 2] < 100  # class 2 greenish
    names = [(0, "background")] + [(i, f"class number {i}") for i in range(1, 9)]
    narrow, wide = legend(names, 120), legend(names, 2000)
    assert narrow.shape[-1] == 120 and wide.shape[-1] == 2000
    assert narrow.shape[1] > wide.shape[1]  # the entries wrap into more rows
