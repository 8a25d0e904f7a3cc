"""Reading a folder at one size: images as predict resizes them, masks by their nearest pixel."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from helpers.datasets import write_classes, write_item

from lit_gradcam.data.dataset import DatasetError, ShapesFolder
from lit_gradcam.data.image_folder import normalize_resized
from lit_gradcam.data.resizing import resized_image, resized_mask
from lit_gradcam.imaging import denormalize_to_uint8


def test_an_image_is_resized_as_predict_resizes_its_pictures() -> None:
    image = np.random.default_rng(0).integers(0, 256, (30, 50, 3), dtype=np.uint8)
    mine = resized_image(image, (12, 20))
    as_predict = normalize_resized(torch.from_numpy(image).permute(2, 0, 1), (12, 20))
    theirs = denormalize_to_uint8(as_predict[None])[0].permute(1, 2, 0).numpy()
    assert mine.shape == (12, 20, 3) and mine.dtype == np.uint8
    assert np.abs(mine.astype(int) - theirs.astype(int)).max() <= 1


@pytest.mark.parametrize("dtype", [np.uint8, np.bool_])
def test_a_mask_takes_the_value_of_the_source_pixel_nearest_each_centre(dtype) -> None:
    values = np.random.default_rng(1).choice([0, 1, 2, 255], (30, 50)).astype(np.uint8)
    mask = (values > 0) if dtype is np.bool_ else values
    out = resized_mask(mask, (12, 20))
    rows = np.floor((np.arange(12) + 0.5) * 30 / 12).astype(int)
    columns = np.floor((np.arange(20) + 0.5) * 50 / 20).astype(int)
    assert out.dtype == mask.dtype and np.array_equal(out, mask[rows][:, columns])


def test_a_folder_of_several_image_sizes_is_read_at_the_size_asked(tmp_path: Path) -> None:
    write_classes(tmp_path, "cat", "dog")
    small = np.zeros((8, 10), np.uint8)
    small[2:6, 2:6], small[0] = 2, 255
    write_item(tmp_path, "train", "a", small, "dog")
    large = np.kron(small, np.ones((3, 3), np.uint8))  # the same picture at three times the size
    write_item(tmp_path, "train", "b", large, "dog")
    with pytest.raises(DatasetError, match="or set data.image_size"):
        ShapesFolder(tmp_path, "train")
    data = ShapesFolder(tmp_path, "train", size=(8, 10))
    assert data.image_size == (8, 10)
    for index in range(2):
        image, _, mask = data[index]
        assert image.shape == (3, 8, 10) and np.array_equal(mask.numpy(), small)
