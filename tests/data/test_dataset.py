"""ShapesFolder: reading the shapes layout, and one error naming every bad file of a split."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from lit_gradcam.data import CLASSES, layout
from lit_gradcam.data.dataset import DatasetError, ShapesFolder
from lit_gradcam.imaging import IMAGENET_MEAN, IMAGENET_STD

H, W = 48, 64


def _write(root: Path, split: str, stem: str, image: Image.Image, mask: Image.Image, label: str):
    for kind in ("images", "masks", "labels"):
        (root / kind / split).mkdir(parents=True, exist_ok=True)
    image.save(root / "images" / split / f"{stem}.png")
    mask.save(root / "masks" / split / f"{stem}.png")
    (root / "labels" / split / f"{stem}.txt").write_text(label)


def test_generated_split_reads_back_with_types_and_shapes(tiny_root: Path):
    data = ShapesFolder(tiny_root, "train")
    assert len(data) == 20 and data.classes == CLASSES
    assert data.stems == sorted(data.stems) and data.image_paths[0].name == "00000.png"
    image, label, mask = data[3]
    assert image.shape == (3, H, W) and image.dtype == torch.float32
    assert label.dtype == torch.int64 and label.ndim == 0
    expected = (tiny_root / "labels" / "train" / "00003.txt").read_text().strip()
    assert CLASSES[label] == expected
    assert mask.shape == (H, W) and mask.dtype == torch.bool
    on_disk = np.asarray(Image.open(tiny_root / "masks" / "train" / "00003.png")) > 0
    assert (mask.numpy() == on_disk).all()


def test_hand_made_homework_folder_with_odd_formats(tmp_path: Path):
    """Arbitrary stems, RGBA / palette / grey images, 0/1, RGB and 0/255 masks."""
    rgba = np.zeros((H, W, 4), np.uint8)
    rgba[..., 0], rgba[..., 1], rgba[..., 2], rgba[..., 3] = 255, 128, 0, 255
    mask01 = np.zeros((H, W), np.uint8)
    mask01[10:20, 5:15] = 1
    _write(tmp_path, "test", "cat_7", Image.fromarray(rgba), Image.fromarray(mask01), "Star\n")
    palette = Image.fromarray(np.full((H, W), 3, np.uint8))
    palette.putpalette([0, 0, 0] * 3 + [10, 20, 30] + [0, 0, 0] * 252)
    rgb_mask = np.zeros((H, W, 3), np.uint8)
    rgb_mask[0, 0, 2] = 9  # a colour mask: any channel > 0 counts
    assert palette.mode == "P"
    _write(tmp_path, "test", "a-1", palette, Image.fromarray(rgb_mask), "circle")
    grey = Image.fromarray(np.full((H, W), 77, np.uint8))
    _write(tmp_path, "test", "z", grey, Image.fromarray(mask01 * 255), " diamond ")

    data = ShapesFolder(tmp_path, "test")
    assert data.stems == ["a-1", "cat_7", "z"]
    labels = [int(data[i][1]) for i in range(3)]
    assert labels == [CLASSES.index("circle"), CLASSES.index("star"), CLASSES.index("diamond")]

    image, _, mask = data[1]  # the opaque RGBA one: alpha dropped, ImageNet-normalised
    mean, std = torch.tensor(IMAGENET_MEAN), torch.tensor(IMAGENET_STD)
    expected = (torch.tensor([255, 128, 0]) / 255 - mean) / std
    assert torch.allclose(image[:, 5, 7], expected, atol=1e-6)
    assert torch.allclose(image.mean((1, 2)), expected, atol=1e-6)
    assert mask.sum() == 100 and mask[10:20, 5:15].all()

    image, _, mask = data[0]  # palette image, RGB mask
    assert torch.allclose(image[:, 0, 0], (torch.tensor([10, 20, 30]) / 255 - mean) / std)
    assert mask.sum() == 1 and mask[0, 0]

    raw, _, _ = ShapesFolder(tmp_path, "test", normalize=False)[2]  # grey, unnormalised
    assert torch.allclose(raw, torch.full((3, H, W), 77 / 255))


def test_missing_root_names_it(tmp_path: Path):
    with pytest.raises(DatasetError, match=f"{tmp_path / 'nowhere'} does not exist"):
        ShapesFolder(tmp_path / "nowhere", "train")


def test_missing_split_folder_names_it(tiny_copy: Path):
    shutil.rmtree(tiny_copy / "masks" / "val")
    with pytest.raises(DatasetError) as error:
        ShapesFolder(tiny_copy, "val")
    assert str(tiny_copy / "masks" / "val") in str(error.value)
    assert str(tiny_copy / "images" / "val") not in str(error.value)
    with pytest.raises(DatasetError, match="missing folder"):
        ShapesFolder(tiny_copy, "holdout")


def test_mismatched_stems_name_the_missing_ones(tiny_copy: Path):
    (tiny_copy / "labels" / "train" / "00004.txt").unlink()
    (tiny_copy / "masks" / "train" / "00011.png").rename(tiny_copy / "masks" / "train" / "x.png")
    with pytest.raises(DatasetError) as error:
        ShapesFolder(tiny_copy, "train")
    message = str(error.value)
    assert "missing file(s)" in message
    assert "00004" in message and str(tiny_copy / "labels" / "train") in message
    assert "00011" in message and str(tiny_copy / "masks" / "train") in message
    assert "x" in message and str(tiny_copy / "images" / "train") in message


def test_a_jpeg_image_is_read_as_pil_decodes_it(tiny_copy: Path):
    """A user's photos are often JPEG: an image may have any suffix PIL reads here."""
    images = tiny_copy / "images" / "train"
    Image.open(images / "00003.png").save(images / "00003.jpg", quality=90)
    (images / "00003.png").unlink()
    data = ShapesFolder(tiny_copy, "train", normalize=False)
    index = data.stems.index("00003")
    with Image.open(images / "00003.jpg") as decoded:
        expected = np.asarray(decoded.convert("RGB"))
    assert data.image_paths[index].name == "00003.jpg"
    assert np.array_equal((data[index][0] * 255).round().byte().permute(1, 2, 0).numpy(), expected)


def test_a_mask_of_another_suffix_is_named_beside_the_missing_png(tiny_copy: Path):
    masks = tiny_copy / "masks" / "train"
    Image.open(masks / "00003.png").save(masks / "00003.jpg")
    (masks / "00003.png").unlink()
    with pytest.raises(DatasetError, match=r"00003.png \(.*exists; 00003.jpg is there, not .png\)"):
        ShapesFolder(tiny_copy, "train")


def test_two_images_of_one_stem_are_both_named(tiny_copy: Path):
    images = tiny_copy / "images" / "train"
    Image.open(images / "00003.png").save(images / "00003.jpg")
    with pytest.raises(DatasetError, match="whose stem another file of their folder has") as error:
        ShapesFolder(tiny_copy, "train")
    assert f"{images / '00003.png'} (and 00003.jpg)" in str(error.value) or (
        f"{images / '00003.jpg'} (and 00003.png)" in str(error.value)
    )


def test_unknown_class_names_the_file_and_the_valid_classes(tiny_copy: Path):
    bad = tiny_copy / "labels" / "test" / "00006.txt"
    bad.write_text("hexagon\n")
    with pytest.raises(DatasetError) as error:
        ShapesFolder(tiny_copy, "test")
    assert str(bad) in str(error.value) and "hexagon" in str(error.value)
    assert all(name in str(error.value) for name in CLASSES)


@pytest.mark.parametrize("kind", ["images", "masks"])
def test_truncated_png_names_the_file(tiny_copy: Path, kind: str):
    bad = tiny_copy / kind / "val" / "00002.png"
    data = bad.read_bytes()
    bad.write_bytes(data[: len(data) // 2])
    with pytest.raises(DatasetError, match="unreadable or truncated") as error:
        ShapesFolder(tiny_copy, "val")
    assert str(bad) in str(error.value)


def test_non_png_bytes_name_the_file(tiny_copy: Path):
    bad = tiny_copy / "images" / "val" / "00005.png"
    bad.write_text("not an image")
    with pytest.raises(DatasetError, match="unreadable or truncated") as error:
        ShapesFolder(tiny_copy, "val")
    assert str(bad) in str(error.value)


def test_mask_of_wrong_size_names_it(tiny_copy: Path):
    bad = tiny_copy / "masks" / "test" / "00009.png"
    Image.new("L", (32, 32)).save(bad)
    with pytest.raises(DatasetError, match="32x32") as error:
        ShapesFolder(tiny_copy, "test")
    assert str(bad) in str(error.value) and "64x48" in str(error.value)


def test_images_of_different_sizes_in_one_split_are_named(tiny_copy: Path):
    image, mask = Image.new("RGB", (40, 30)), Image.new("L", (40, 30))
    _write(tiny_copy, "test", "odd", image, mask, "square")
    with pytest.raises(DatasetError, match="all images of a split must match") as error:
        ShapesFolder(tiny_copy, "test")
    assert str(tiny_copy / "images" / "test" / "odd.png") in str(error.value)


def test_empty_split_is_an_error(tmp_path: Path):
    for kind in ("images", "masks", "labels"):
        (tmp_path / kind / "train").mkdir(parents=True)
    with pytest.raises(DatasetError, match="is empty") as error:
        ShapesFolder(tmp_path, "train")
    assert str(tmp_path / "images" / "train") in str(error.value)


def test_every_kind_of_bad_file_is_named_in_one_error(tiny_copy: Path):
    images, masks, labels = (tiny_copy / kind / "train" for kind in ("images", "masks", "labels"))
    (labels / "00004.txt").unlink()
    (labels / "00006.txt").write_text("hexagon\n")
    (labels / "00007.txt").write_bytes(b"\xff\xfe\x00")
    for truncated in (images / "00002.png", masks / "00003.png"):
        truncated.write_bytes(truncated.read_bytes()[:100])
    Image.new("L", (32, 32)).save(masks / "00009.png")
    Image.new("RGB", (40, 30)).save(images / "00011.png")
    Image.new("L", (40, 30)).save(masks / "00011.png")
    with pytest.raises(DatasetError) as error:
        ShapesFolder(tiny_copy, "train")
    message = str(error.value)
    assert message.startswith(f"split 'train' of {tiny_copy} has 7 bad or missing file(s):")
    groups = {
        "1 missing file(s)": [labels / "00004.txt"],
        "1 label(s) naming an unknown class": [labels / "00006.txt"],
        "1 unreadable label file(s)": [labels / "00007.txt"],
        "2 unreadable or truncated image(s)": [images / "00002.png", masks / "00003.png"],
        "1 mask(s) whose size is not their image's": [masks / "00009.png"],
        "1 image(s) not of the split's usual size 64x48": [images / "00011.png"],
    }
    for title, paths in groups.items():
        assert f"- {title}" in message
        section = message.split(f"- {title}")[1].split("\n- ")[0]
        assert all(str(path) in section for path in paths), (title, section)
    assert "'hexagon'" in message and "is 32x32, its image" in message and "is 40x30" in message


def test_a_long_list_stops_after_the_limit(tiny_copy: Path, monkeypatch):
    monkeypatch.setattr(layout, "SHOWN", 5)
    labels = sorted((tiny_copy / "labels" / "train").iterdir())
    for path in labels:
        path.write_text("blob")
    with pytest.raises(DatasetError) as error:
        ShapesFolder(tiny_copy, "train")
    message = str(error.value)
    assert f"- {len(labels)} label(s) naming an unknown class" in message
    assert all(str(path) in message for path in labels[:5])
    assert not any(str(path) in message for path in labels[5:])
    assert message.endswith(f"... and {len(labels) - 5} more")


def test_hidden_files_such_as_macos_resource_forks_are_left_out(tiny_copy: Path):
    """A macOS archive's `._<name>.png` files (not images) do not break the split: they are left
    out with one warning, and every real image is still read."""
    for kind, suffix in (("images", ".png"), ("masks", ".png"), ("labels", ".txt")):
        (tiny_copy / kind / "train" / f"._00001{suffix}").write_bytes(b"\x00\x05\x16\x07fork")
    with pytest.warns(UserWarning, match="3 hidden file\\(s\\) left out"):
        split = ShapesFolder(tiny_copy, "train")
    assert len(split) == len(list((tiny_copy / "labels" / "train").glob("[!.]*.txt")))


def test_a_root_one_level_above_the_layout_names_the_folder_that_holds_it(
    tiny_copy: Path, tmp_path: Path
):
    """An archive extracted with its top folder (and macOS's __MACOSX beside it)."""
    parent = tmp_path / "extracted"
    parent.mkdir()
    shutil.move(tiny_copy, parent / "synthetic_shapes")
    (parent / "__MACOSX").mkdir()
    with pytest.raises(DatasetError, match="synthetic_shapes holds it: pass that as the root"):
        ShapesFolder(parent, "train")
