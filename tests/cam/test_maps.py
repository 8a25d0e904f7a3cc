"""Min-max and resampling of map batches, including receptive-field-centre alignment."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from lit_gradcam.cam.maps import feature_stride, minmax, resize_maps


def test_minmax_is_per_image_and_flat_maps_become_zeros() -> None:
    maps = torch.stack([torch.arange(12.0).reshape(3, 4) * 5 - 7, torch.full((3, 4), 2.0)])
    scaled = minmax(maps)
    torch.testing.assert_close(scaled[0], torch.arange(12.0).reshape(3, 4) / 11)
    assert torch.equal(scaled[1], torch.zeros(3, 4))


def test_unaligned_resize_is_bilinear_with_half_pixel_centres() -> None:
    maps = torch.rand(3, 6, 8, generator=torch.Generator().manual_seed(0))
    expected = F.interpolate(maps[:, None], size=(48, 64), mode="bilinear", align_corners=False)
    torch.testing.assert_close(resize_maps(maps, (48, 64), (48, 64)), expected[:, 0])


@pytest.mark.parametrize(("pixels", "cells", "stride"), [(48, 6, 8), (64, 8, 8), (50, 7, 8)])
def test_feature_stride(pixels: int, cells: int, stride: int) -> None:
    assert feature_stride(pixels, cells) == stride


def test_aligned_resize_puts_cell_j_on_pixel_stride_times_j() -> None:
    maps = torch.zeros(1, 6, 8)
    maps[0, 2, 3] = 1.0
    aligned = resize_maps(maps, (48, 64), (48, 64), align=True)[0]
    assert aligned[16, 24] == 1.0 and aligned.max() == 1.0
    torch.testing.assert_close(aligned[16, 20], torch.tensor(0.5))  # linear between centres
    assert aligned[16, 32] == 0 and aligned[16, 16] == 0
    unaligned = resize_maps(maps, (48, 64), (48, 64))[0]
    assert unaligned[19:21, 27:29].min() > 0.75  # peak at 8 j + 3.5: 3.5 px right and down


def test_aligned_resize_of_an_upscaled_input_maps_back_to_the_image() -> None:
    maps = torch.zeros(1, 12, 16)
    maps[0, 4, 6] = 1.0  # centre at (32, 48) in the 2x input, i.e. (15.75, 23.75) here
    aligned = resize_maps(maps, (48, 64), (96, 128), align=True)[0]
    # image pixel x sits at 2 x + 0.5 in the input, i.e. at cell (2 x + 0.5) / 8
    torch.testing.assert_close(aligned[16, 24], torch.tensor(0.9375**2))
    torch.testing.assert_close(aligned[15, 23], torch.tensor(0.8125**2))
    assert aligned.argmax() == 16 * 64 + 24


def test_resnet_layer2_receptive_fields_are_centred_on_stride_times_j(resnet) -> None:
    """The convention `align=True` relies on, checked on the network: the gradient of one
    layer2 cell w.r.t. the input is supported on a square centred on pixel 8 j."""
    image = torch.randn(1, 3, 256, 256, requires_grad=True)
    captured = {}
    handle = resnet.layer2.register_forward_hook(lambda m, i, o: captured.update(out=o))
    try:
        resnet(image)
    finally:
        handle.remove()
    (grad,) = torch.autograd.grad(captured["out"][0, :, 16, 10].sum(), image)
    rows, cols = grad.abs().sum((0, 1)).nonzero(as_tuple=True)
    assert (rows.min() + rows.max()) / 2 == 8 * 16
    assert (cols.min() + cols.max()) / 2 == 8 * 10
