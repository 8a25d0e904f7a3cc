"""Folders with their own classes (classes.txt), index masks and several classes per image.

Every case writes a real folder with PIL and reads it through ShapesFolder.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from helpers.datasets import write_classes, write_item
from PIL import Image

from lit_gradcam.data import CLASSES
from lit_gradcam.data.dataset import DatasetError, ShapesFolder

H, W = 8, 10


def _index_mask(*boxes: tuple[int, slice, slice]) -> np.ndarray:
    """A uint8 index mask: each (value, rows, columns) box painted over background 0."""
    mask = np.zeros((H, W), np.uint8)
    for value, rows, columns in boxes:
        mask[rows, columns] = value
    return mask


TWO = _index_mask((1, slice(0, 3), slice(0, 3)), (3, slice(4, 8), slice(5, 9)))


def test_grey_index_mask_keeps_classes_and_ignored_pixels(tmp_path: Path):
    write_classes(tmp_path, "circle", "square", "star")
    mask = TWO.copy()
    mask[3, :] = 255  # an uncertain rim
    write_item(tmp_path, "train", "a", mask, "circle\nstar\n")
    data = ShapesFolder(tmp_path, "train")
    assert data.semantic and data.multi_label and data.classes == ("circle", "square", "star")
    _, target, served = data[0]
    assert served.dtype == torch.uint8 and served.shape == (H, W)
    assert (served.numpy() == mask).all() and (served[3] == 255).all()
    assert target.dtype == torch.float32 and target.tolist() == [1.0, 0.0, 1.0]
    assert data.labels == [(0, 2)]


def test_palette_mask_is_read_by_index_not_colour(tmp_path: Path):
    write_classes(tmp_path, "cat", "dog")
    indices = _index_mask((2, slice(1, 5), slice(2, 6)))
    indices[0, :] = 255
    colours = [0] * 768  # background near-white, class 2 near-black, 255 VOC's void colour
    colours[0:3], colours[6:9], colours[765:768] = [250, 250, 250], [1, 1, 1], [224, 224, 192]
    palette = Image.fromarray(indices)
    palette.putpalette(colours)
    write_item(tmp_path, "train", "x", palette, "Dog")
    with Image.open(tmp_path / "masks" / "train" / "x.png") as stored:
        assert stored.mode == "P" and stored.getpalette()[6:9] == [1, 1, 1]
    data = ShapesFolder(tmp_path, "train")
    assert not data.multi_label and (data[0][2].numpy() == indices).all()


def test_single_label_folder_with_classes_serves_int_targets(tmp_path: Path):
    write_classes(tmp_path, "Circle", "Hexagon")
    write_item(tmp_path, "val", "a", _index_mask((2, slice(0, 4), slice(0, 4))), "hexagon")
    write_item(tmp_path, "val", "b", _index_mask((1, slice(0, 4), slice(0, 4))), "CIRCLE\n")
    data = ShapesFolder(tmp_path, "val")
    assert data.semantic and not data.multi_label
    assert data.classes == ("Circle", "Hexagon") and data.labels == [1, 0]
    _, target, mask = data[0]
    assert target.dtype == torch.int64 and target.ndim == 0 and int(target) == 1
    assert mask.dtype == torch.uint8 and int(mask.max()) == 2


def test_multi_label_is_a_folder_property(tmp_path: Path):
    """A val split of single labels serves multi-hot targets when train lists several; the
    other split's bad files are its own constructor's to report."""
    write_classes(tmp_path, "circle", "square", "star")
    write_item(tmp_path, "train", "a", TWO, "star\ncircle")
    write_item(tmp_path, "test", "broken", TWO, "hexagon")
    write_item(tmp_path, "val", "b", _index_mask((2, slice(0, 2), slice(0, 2))), "square")
    val = ShapesFolder(tmp_path, "val")
    assert val.multi_label and val.labels == [(1,)]
    assert val[0][1].tolist() == [0.0, 1.0, 0.0]
    assert ShapesFolder(tmp_path, "train")[0][1].tolist() == [1.0, 0.0, 1.0]
    with pytest.raises(DatasetError, match="hexagon"):
        ShapesFolder(tmp_path, "test")


def test_an_empty_label_of_a_classes_folder_is_an_image_of_no_class(tmp_path: Path):
    """Its mask holds no class (background and ignored pixels only); the folder turns
    multi-label, as a softmax cannot say "none", and says it has such images."""
    write_classes(tmp_path, "circle", "square")
    write_item(tmp_path, "train", "a", _index_mask((2, slice(0, 4), slice(0, 4))), "square")
    rim = _index_mask((255, slice(0, 1), slice(0, W)))
    write_item(tmp_path, "train", "none", rim, "\n")
    write_item(tmp_path, "val", "b", _index_mask((1, slice(0, 4), slice(0, 4))), "circle")
    data = ShapesFolder(tmp_path, "train")
    assert data.multi_label and data.empty_images and data.labels == [(1,), ()]
    assert data[1][1].tolist() == [0.0, 0.0] and data[0][1].tolist() == [0.0, 1.0]
    val = ShapesFolder(tmp_path, "val")  # a folder property: every split serves multi-hot
    assert val.multi_label and val.empty_images and val[0][1].tolist() == [1.0, 0.0]


@pytest.mark.parametrize("value", [255, 1])
def test_a_binary_mask_in_a_classes_folder_is_named_as_one(tmp_path: Path, value: int):
    """The course's masks (255, or 1, for the object) beside a classes.txt: the error says an
    index mask is expected and how its values read."""
    write_classes(tmp_path, "cat", "dog")
    write_item(tmp_path, "train", "a", (TWO > 0) * value, "dog")
    with pytest.raises(DatasetError, match="mask looks binary") as error:
        ShapesFolder(tmp_path, "train")
    masks, labels = tmp_path / "masks" / "train", tmp_path / "labels" / "train"
    assert f"{labels / 'a.txt'} lists dog; its mask {masks / 'a.png'} holds only 0 and {value}" in (
        str(error.value)
    )
    assert "1 for the first" in str(error.value)


def test_course_folder_stays_single_label_with_binary_masks(tmp_path: Path):
    write_item(tmp_path, "train", "a", (TWO > 0) * 255, "Circle")
    data = ShapesFolder(tmp_path, "train")
    assert data.classes == CLASSES and not data.semantic and not data.multi_label
    _, target, mask = data[0]
    assert target.dtype == torch.int64 and int(target) == 0
    assert mask.dtype == torch.bool and (mask.numpy() == (TWO > 0)).all()


def test_an_empty_label_without_classes_txt_is_an_error(tmp_path: Path):
    """A course folder's image holds exactly one shape: an empty label is a broken file."""
    write_item(tmp_path, "train", "a", np.zeros((H, W), np.uint8), " \n")
    with pytest.raises(DatasetError, match=r"1 empty label file\(s\)") as e:
        ShapesFolder(tmp_path, "train")
    assert str(tmp_path / "labels" / "train" / "a.txt") in str(e.value)


def test_several_classes_without_classes_txt_is_an_error(tmp_path: Path):
    write_item(tmp_path, "train", "a", (TWO > 0) * 255, "circle\nstar")
    with pytest.raises(DatasetError, match="several classes per image need ROOT/classes.txt") as e:
        ShapesFolder(tmp_path, "train")
    assert str(tmp_path / "labels" / "train" / "a.txt") in str(e.value)


def test_every_bad_file_of_a_semantic_split_is_named_in_one_error(tmp_path: Path):
    write_classes(tmp_path, *(f"class{i}" for i in range(12)))
    write_item(tmp_path, "train", "fine", TWO, "class0\nclass2")
    write_item(tmp_path, "train", "disagree", TWO, "class0")
    write_item(tmp_path, "train", "stray", _index_mask((13, slice(0, 2), slice(0, 2))), "class0")
    rgb = np.zeros((H, W, 3), np.uint8)
    write_item(tmp_path, "train", "colour", Image.fromarray(rgb), "class1")
    write_item(tmp_path, "train", "unknown", TWO, "class0\nblob")
    write_item(tmp_path, "train", "empty", TWO, "\n \n")
    write_item(tmp_path, "train", "twice", TWO, "class0\nCLASS0\nclass2")
    with pytest.raises(DatasetError) as error:
        ShapesFolder(tmp_path, "train")
    message = str(error.value)
    assert message.startswith(f"split 'train' of {tmp_path} has 6 bad or missing file(s):")
    masks, labels = tmp_path / "masks" / "train", tmp_path / "labels" / "train"
    groups = {
        "2 label(s) that disagree with their mask's classes": (
            labels / "disagree.txt",
            f" lists class0; its mask {masks / 'disagree.png'} holds class0, class2",
        ),
        "2 label(s) that disagree": (
            labels / "empty.txt",
            f" lists no class; its mask {masks / 'empty.png'} holds class0, class2",
        ),
        "1 mask value(s) with no class (1..12 name the classes of": (masks / "stray.png", ": 13"),
        "1 colour mask(s) where class indices are expected": (masks / "colour.png", ": mode 'RGB'"),
        "1 label(s) naming an unknown class (expected one of class0, class1,": (
            labels / "unknown.txt",
            ": 'blob'",
        ),
        "1 label(s) listing a class more than once": (labels / "twice.txt", ": 'class0'"),
    }
    for title, (path, detail) in groups.items():
        assert f"- {title}" in message, title
        section = message.split(f"- {title}")[1].split("\n- ")[0]
        assert f"{path}{detail}" in section, (title, section)
    assert "class9, ... (12 classes, see" in message and "class10" not in message


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("", "names no class"),
        ("\n  \n", "names no class"),
        ("cat\ndog\nCat\n", r"'cat' is named more than once \(lines 1, 3"),
        ("background\ncat\n", "line 1 names 'background': mask value 0 is always background"),
        ("".join(f"c{i}\n" for i in range(255)), "names 255 classes, more than 254"),
    ],
)
def test_unusable_classes_txt_is_named_with_what_it_should_hold(
    tmp_path: Path, text: str, match: str
):
    (tmp_path / "classes.txt").write_text(text)
    write_item(tmp_path, "train", "a", TWO, "cat")
    with pytest.raises(DatasetError, match=match) as error:
        ShapesFolder(tmp_path, "train")
    assert str(tmp_path / "classes.txt") in str(error.value)
    assert "one class name per line, in label-index order" in str(error.value)


def test_classes_txt_tolerates_bom_whitespace_and_blank_lines(tmp_path: Path):
    (tmp_path / "classes.txt").write_bytes("\ufeff  Cat \n\n dog\r\n".encode())
    write_item(tmp_path, "train", "a", _index_mask((2, slice(0, 2), slice(0, 2))), "DOG")
    data = ShapesFolder(tmp_path, "train")
    assert data.classes == ("Cat", "dog") and data.labels == [1]


def test_undecodable_classes_txt_is_named(tmp_path: Path):
    (tmp_path / "classes.txt").write_bytes(b"\xff\xfe\x00cat")
    write_item(tmp_path, "train", "a", TWO, "cat")
    with pytest.raises(DatasetError, match="cannot be read \\(UnicodeDecodeError"):
        ShapesFolder(tmp_path, "train")
