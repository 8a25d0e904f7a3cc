"""The SAM stand-in's training backgrounds: dead leaves painted as the model says (each pixel
the last disc over it), radii spread by the 1/r^3 law."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from lit_gradcam.sam_training.scene_backgrounds import leaf_radii, paint_discs


def _painted_one_by_one(height: int, width: int, centres, radii, colours) -> np.ndarray:
    """The dead-leaves image by the definition: discs dropped one at a time, in order."""
    image = np.broadcast_to(colours[0][:, None, None], (3, height, width)).copy()
    ys, xs = np.mgrid[0:height, 0:width]
    for (cy, cx), radius, colour in zip(centres, radii, colours[1:], strict=True):
        disc = (ys - cy) ** 2 + (xs - cx) ** 2 <= radius**2
        image[:, disc] = colour[:, None]
    return image


def test_each_pixel_takes_the_colour_of_the_last_disc_over_it() -> None:
    generator = torch.Generator().manual_seed(3)
    count, height, width = 40, 30, 50
    centres = torch.rand(count, 2, generator=generator) * torch.tensor([height, width])
    radii = 1 + 9 * torch.rand(count, generator=generator)
    colours = torch.rand(count + 1, 3, generator=generator) * 255
    painted = paint_discs(height, width, centres, radii, colours)
    expected = _painted_one_by_one(height, width, centres.numpy(), radii.numpy(), colours.numpy())
    assert painted.shape == (3, height, width)
    np.testing.assert_allclose(painted.numpy(), expected)


def test_a_pixel_under_no_disc_keeps_the_base_colour() -> None:
    centres, radii = torch.tensor([[5.0, 5.0]]), torch.tensor([2.0])
    colours = torch.tensor([[10.0, 20.0, 30.0], [200.0, 0.0, 0.0]])
    painted = paint_discs(12, 12, centres, radii, colours)
    assert painted[:, 5, 5].tolist() == [200.0, 0.0, 0.0]
    assert painted[:, 11, 11].tolist() == [10.0, 20.0, 30.0]


def test_leaf_radii_follow_the_inverse_cube_law_between_their_bounds() -> None:
    low, high = 2.0, 24.0
    radii = leaf_radii(200_000, low, high, torch.Generator().manual_seed(0))
    assert low <= radii.min() and radii.max() <= high
    for r in (3.0, 6.0, 12.0):  # CDF of p(r) ~ r^-3 on [low, high]
        cdf = (low**-2 - r**-2) / (low**-2 - high**-2)
        assert (radii <= r).float().mean().item() == pytest.approx(cdf, abs=0.005)
