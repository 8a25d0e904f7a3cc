"""The report's inverse-distance smoothing against an independent scipy implementation."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy.signal import convolve2d

from lit_gradcam.cam.transform import InverseDistanceSmoothing


def _scipy_smoothing(heatmap: np.ndarray, radius: int, eps: float) -> np.ndarray:
    i, j = np.mgrid[-radius : radius + 1, -radius : radius + 1]
    kernel = 1.0 / np.sqrt(i**2 + j**2 + eps)
    smoothed = heatmap + convolve2d(heatmap, kernel, mode="same", boundary="fill", fillvalue=0)
    smoothed -= smoothed.min()
    return smoothed / smoothed.max()


@pytest.mark.parametrize(("radius", "eps"), [(5, 1.0), (2, 0.5), (0, 1.0)])
def test_matches_scipy(radius: int, eps: float) -> None:
    heatmaps = torch.rand(3, 48, 64, generator=torch.Generator().manual_seed(0)) ** 4
    smoothed = InverseDistanceSmoothing(radius, eps)(heatmaps)
    assert smoothed.shape == heatmaps.shape and smoothed.dtype == torch.float32
    for heatmap, ours in zip(heatmaps.double().numpy(), smoothed.numpy(), strict=True):
        np.testing.assert_allclose(ours, _scipy_smoothing(heatmap, radius, eps), atol=1e-5)


def test_kernel_values() -> None:
    kernel = InverseDistanceSmoothing(radius=2, eps=1.0).kernel()
    assert kernel.shape == (5, 5) and kernel[2, 2] == 1.0
    torch.testing.assert_close(kernel[0, 1], torch.tensor(1 / 6**0.5))


def test_a_zero_map_stays_zero_and_a_spike_spreads() -> None:
    maps = torch.zeros(2, 16, 16)
    maps[1, 8, 8] = 1.0
    smoothed = InverseDistanceSmoothing()(maps)
    assert torch.equal(smoothed[0], torch.zeros(16, 16))
    assert smoothed[1].argmax() == 8 * 16 + 8 and 0 < smoothed[1, 8, 12] < 1


def test_bad_arguments() -> None:
    with pytest.raises(ValueError, match="radius"):
        InverseDistanceSmoothing(radius=-1)
    with pytest.raises(ValueError, match="eps"):
        InverseDistanceSmoothing(eps=0.0)
