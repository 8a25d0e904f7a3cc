"""Pixel rules: images read as a viewer shows them, masks as the reference loader reads them.

Every case writes real files with PIL and reads them back through ShapesFolder / ImageFolder.
"""

from __future__ import annotations

import re
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image, ImageOps

from lit_gradcam.data.dataset import DatasetError, ShapesFolder
from lit_gradcam.data.image_folder import ImageFolder, collate_images
from lit_gradcam.data.pixels import COMPOSITED, PixelError, index_mask, viewer_rgb

H, W = 12, 20
ORIENTATION = 0x0112


def _write(root: Path, stem: str, image: Image.Image, mask: Image.Image, **save) -> None:
    for kind in ("images", "masks", "labels"):
        (root / kind / "train").mkdir(parents=True, exist_ok=True)
    image.save(root / "images" / "train" / f"{stem}.png", **save)
    mask.save(root / "masks" / "train" / f"{stem}.png", **save)
    (root / "labels" / "train" / f"{stem}.txt").write_text("circle")


def _rgb(seed: int = 0) -> Image.Image:
    """A non-square RGB image with no symmetry, so a rotation shows."""
    return Image.fromarray(np.random.default_rng(seed).integers(0, 256, (H, W, 3), np.uint8))


def _mask(values: np.ndarray) -> Image.Image:
    return Image.fromarray(values.astype(np.uint8))


def _box() -> np.ndarray:
    box = np.zeros((H, W), np.uint8)
    box[2:6, 3:9] = 255
    return box


def _raw(root: Path) -> ShapesFolder:
    return ShapesFolder(root, "train", normalize=False)


def _pixels(image: torch.Tensor) -> np.ndarray:
    """An unnormalised (3, H, W) float image as (H, W, 3) uint8."""
    return (image * 255).round().to(torch.uint8).permute(1, 2, 0).numpy()


def _exif(orientation: int) -> Image.Exif:
    exif = Image.Exif()
    exif[ORIENTATION] = orientation
    return exif


@pytest.mark.parametrize("orientation", [6, 8])
def test_exif_rotated_jpeg_reads_upright(tmp_path: Path, orientation: int):
    path = tmp_path / "phone.jpg"
    _rgb().save(path, exif=_exif(orientation))
    with Image.open(path) as stored:
        assert stored.size == (W, H)
        upright = np.array(ImageOps.exif_transpose(stored).convert("RGB"))
    original = ImageFolder(tmp_path)[0]["original"]
    assert original.shape == (3, W, H)
    assert (original.permute(1, 2, 0).numpy() == upright).all()


def test_exif_rotated_image_and_mask_stay_aligned(tmp_path: Path):
    image, box = _rgb(), _box()
    _write(tmp_path, "x", image, _mask(box), exif=_exif(6))
    data = _raw(tmp_path)
    pixels, _, mask = data[0]
    assert pixels.shape == (3, W, H) and mask.shape == (W, H)
    rotated = image.transpose(Image.Transpose.ROTATE_270)  # what orientation 6 asks for
    assert (_pixels(pixels) == np.array(rotated)).all()
    assert (mask.numpy() == np.rot90(box, k=-1).astype(bool)).all()


def test_16_bit_grey_png_is_scaled_not_clipped(tmp_path: Path):
    values = np.tile(np.array([0, 32896, 65535], np.uint16), (H, 1))
    Image.fromarray(values).save(tmp_path / "deep.png")
    with Image.open(tmp_path / "deep.png") as stored:
        assert stored.mode.startswith("I;16")
    original = ImageFolder(tmp_path)[0]["original"]
    assert (original == torch.tensor([0, 128, 255], dtype=torch.uint8)).all()


def test_16_bit_grey_image_of_a_split_is_scaled(tmp_path: Path):
    values = np.full((H, W), 65535, np.uint16)
    values[:, :10] = 32896
    _write(tmp_path, "x", Image.fromarray(values), _mask(_box()))
    pixels = _pixels(_raw(tmp_path)[0][0])
    assert (pixels[:, :10] == 128).all() and (pixels[:, 10:] == 255).all()


def test_mode_i_is_read_as_16_bit_and_out_of_range_refused():
    assert Image.fromarray(np.array([[0, 32896, 65535]], np.int32)).mode == "I"
    pixels, note = viewer_rgb(Image.fromarray(np.array([[0, 32896, 65535]], np.int32)))
    assert pixels.shape == (1, 3, 3) and (pixels[0, :, 0] == [0, 128, 255]).all() and note == ""
    with pytest.raises(PixelError, match="'I' holds values -1..70000"):
        viewer_rgb(Image.fromarray(np.array([[-1, 70000]], np.int32)))


def test_float_image_is_refused_naming_the_mode():
    with pytest.raises(PixelError, match="mode 'F' has no defined 8-bit reading"):
        viewer_rgb(Image.fromarray(np.zeros((2, 2), np.float32)))


def _half_transparent() -> Image.Image:
    rgba = np.zeros((H, W, 4), np.uint8)
    rgba[..., 0] = 200
    rgba[:, W // 2 :, 3] = 255  # the left half fully transparent
    return Image.fromarray(rgba)


def test_transparent_rgba_is_composited_over_white_with_a_note(tmp_path: Path):
    _half_transparent().save(tmp_path / "a.png")
    opaque = np.full((H, W, 4), 255, np.uint8)
    opaque[..., :3] = 7
    Image.fromarray(opaque).save(tmp_path / "b.png")
    folder = ImageFolder(tmp_path)
    batch = collate_images([folder[0], folder[1]])
    assert batch["note"] == [COMPOSITED, ""] and batch["error"] == ["", ""]
    translucent, solid = (image.permute(1, 2, 0).numpy() for image in batch["original"])
    assert (translucent[:, : W // 2] == 255).all()
    assert (translucent[:, W // 2 :] == [200, 0, 0]).all()
    assert (solid == 7).all()


def test_partial_alpha_blends_with_white(tmp_path: Path):
    rgba = np.zeros((H, W, 4), np.uint8)
    rgba[..., 0], rgba[..., 1], rgba[..., 2], rgba[..., 3] = 255, 128, 0, 200
    Image.fromarray(rgba).save(tmp_path / "a.png")
    item = ImageFolder(tmp_path)[0]
    assert item["note"] == COMPOSITED
    assert (item["original"].permute(1, 2, 0) == torch.tensor([255, 155, 55])).all()


def test_split_with_transparent_images_warns_once(tmp_path: Path):
    for stem in ("a", "b"):
        _write(tmp_path, stem, _half_transparent(), _mask(_box()))
    _write(tmp_path, "c", _rgb(), _mask(_box()))
    with pytest.warns(UserWarning) as caught:
        data = _raw(tmp_path)
    assert len(caught) == 1
    message = str(caught[0].message)
    assert "2 image(s) with transparent pixels, composited over white" in message
    assert str(tmp_path / "images" / "train" / "a.png") in message
    assert (_pixels(data[1][0])[:, : W // 2] == 255).all()


def test_palette_mask_is_read_by_index_not_colour(tmp_path: Path):
    indices = np.zeros((H, W), np.uint8)
    indices[3:7, 4:10] = 1
    palette = Image.fromarray(indices)
    palette.putpalette([255, 255, 255, 0, 0, 0])  # index 0 white, index 1 black: mode P
    _write(tmp_path, "x", _rgb(), palette)
    with Image.open(tmp_path / "masks" / "train" / "x.png") as stored:
        assert stored.mode == "P"
    mask = _raw(tmp_path)[0][2].numpy()
    assert (mask == (indices == 1)).all()


def test_mask_with_shape_only_in_alpha_is_one_error_naming_it(tmp_path: Path):
    rgba = np.zeros((H, W, 4), np.uint8)
    rgba[..., 3] = _box()
    _write(tmp_path, "ghost", _rgb(), Image.fromarray(rgba))
    _write(tmp_path, "fine", _rgb(), _mask(_box()))
    with pytest.raises(DatasetError) as error:
        _raw(tmp_path)
    message = str(error.value)
    assert "has 1 bad or missing file(s)" in message
    assert "1 mask(s) with transparency (save the mask as a greyscale PNG" in message
    assert str(tmp_path / "masks" / "train" / "ghost.png") in message


def test_opaque_rgba_mask_reads_its_colour_channels(tmp_path: Path):
    rgba = np.full((H, W, 4), 255, np.uint8)
    rgba[..., :3] = 0
    rgba[2:6, 3:9, 1] = 90
    _write(tmp_path, "x", _rgb(), Image.fromarray(rgba))
    assert (_raw(tmp_path)[0][2].numpy() == _box().astype(bool)).all()


def test_soft_masks_keep_the_ring_and_warn_once(tmp_path: Path):
    soft = _box()
    soft[1, 2:10] = 128  # the blended ring above the shape
    _write(tmp_path, "a", _rgb(), _mask(soft))
    _write(tmp_path, "b", _rgb(), _mask(soft))
    _write(tmp_path, "c", _rgb(), _mask(_box()))
    with pytest.warns(UserWarning) as caught:
        data = _raw(tmp_path)
    assert len(caught) == 1
    message = str(caught[0].message)
    assert "2 mask(s) hold intermediate values" in message and "every non-zero" in message
    assert str(tmp_path / "masks" / "train" / "a.png") in message
    assert (data[0][2].numpy() == (soft > 0)).all() and data[0][2][1, 2:10].all()


@pytest.mark.parametrize("high", [1, 255])
def test_hard_masks_do_not_warn(tmp_path: Path, high: int):
    _write(tmp_path, "x", _rgb(), _mask(_box() // 255 * high))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        mask = _raw(tmp_path)[0][2].numpy()
    assert (mask == _box().astype(bool)).all()


def test_index_mask_reads_grey_values_and_drops_an_opaque_alpha():
    values = np.array([[0, 1, 2], [254, 255, 7]], np.uint8)
    assert (index_mask(Image.fromarray(values)) == values).all()
    opaque = np.stack([values, np.full_like(values, 255)], axis=-1)
    read = index_mask(Image.fromarray(opaque, mode="LA"))
    assert read.dtype == np.uint8 and (read == values).all()
    assert (index_mask(Image.fromarray(values.astype(np.uint16))) == values).all()
    assert index_mask(Image.fromarray(values > 1)).tolist() == [[0, 0, 1], [1, 1, 1]]


@pytest.mark.parametrize(
    ("image", "match"),
    [
        (Image.new("RGB", (3, 2)), "colour mask.*mode 'RGB'"),
        (Image.new("RGBA", (3, 2), (1, 1, 1, 255)), "colour mask.*mode 'RGBA'"),
        (Image.fromarray(np.array([[0, 256]], np.uint16)), "outside 0..255.*values 0..256"),
        (Image.new("LA", (3, 2), (1, 0)), "transparency.*class indices"),
        (Image.fromarray(np.zeros((2, 2), np.float32)), "mode 'F'"),
    ],
)
def test_index_mask_refuses_what_holds_no_class_index(image: Image.Image, match: str):
    with pytest.raises(PixelError) as error:
        index_mask(image)
    assert re.search(match, f"{error.value.problem}: {error.value}")


def test_transparent_palette_index_mask_is_one_error_naming_it(tmp_path: Path):
    (tmp_path / "classes.txt").write_text("circle\n")
    indices = Image.fromarray(_box() // 255)
    indices.putpalette([0, 0, 0, 255, 0, 0])
    _write(tmp_path, "holey", _rgb(), indices)
    indices.save(tmp_path / "masks" / "train" / "holey.png", transparency=0)  # index 0 clear
    with pytest.raises(DatasetError) as error:
        _raw(tmp_path)
    message = str(error.value)
    assert "1 mask(s) with transparency (save the mask as a greyscale or palette PNG" in message
    assert str(tmp_path / "masks" / "train" / "holey.png") in message
