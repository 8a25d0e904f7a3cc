"""Scenes of several shapes: the bank, classes.txt, index masks and labels that agree, object
counts, spacing and overlap rules, determinism, the recipe, bad settings, CLI and datamodule."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from scipy import ndimage

from lit_gradcam.data import ShapesDataModule, multi_object
from lit_gradcam.data import generate as gen
from lit_gradcam.data.backgrounds import HEIGHT, WIDTH
from lit_gradcam.data.generate import MARKER, DatasetExistsError, generate_dataset
from lit_gradcam.data.multi_object import _fits, draw_scene, scene_spec
from lit_gradcam.data.shape_bank import BANK, paint, random_shape, shape_mask, turned_shape
from lit_gradcam.errors import ConfigError

SIZES = {"train": 6, "val": 6}
NAMES = ("hexagon", "cross", "star", "ring", "crescent")
#: 8-connectivity: pixels that touch at a corner are one piece.
EIGHT = np.ones((3, 3), dtype=bool)


def _generate(root: Path, seed: int = 3, **scene) -> Path:
    return generate_dataset(root, SIZES, seed=seed, progress=False, **scene)


def _files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in root.rglob("*") if p.is_file()}


def _items(root: Path):
    """(split, mask array, label lines) of every image of `root`, the mask checked for mode."""
    for split in SIZES:
        for path in sorted((root / "masks" / split).glob("*.png")):
            mask = Image.open(path)
            assert (mask.mode, mask.size) == ("L", (WIDTH, HEIGHT))
            labels = (root / "labels" / split / f"{path.stem}.txt").read_text().splitlines()
            yield split, np.asarray(mask), labels


def _pieces(mask: np.ndarray) -> tuple[int, int]:
    """(pieces summed over the classes, pieces of all objects together)."""
    per_class = sum(ndimage.label(mask == v, EIGHT)[1] for v in np.unique(mask) if v)
    return per_class, ndimage.label(mask > 0, EIGHT)[1]


@pytest.fixture(scope="module")
def apart(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Scenes of 2-4 objects of five classes that never touch."""
    root = tmp_path_factory.mktemp("apart") / "scenes"
    return _generate(root, classes=NAMES, objects=(2, 4), max_overlap=0.0)


@pytest.mark.parametrize("name", BANK)
def test_every_bank_shape_is_one_piece_of_its_size(name: str):
    for size in (8.0, 13.0, 19.0, 30.0):
        mask = shape_mask(name, WIDTH / 2, HEIGHT / 2, size, np.random.default_rng(1))
        assert ndimage.label(mask, EIGHT)[1] == 1, size
        rows, cols = np.flatnonzero(mask.any(1)), np.flatnonzero(mask.any(0))
        height, width = rows[-1] - rows[0] + 1, cols[-1] - cols[0] + 1
        assert max(height, width) <= size + 1 and max(height, width) >= 0.85 * size - 1, size


@pytest.mark.parametrize("name", ["arrow", "heart", "trapezoid", "star"])
@pytest.mark.parametrize("quarter", [0, 1, 2, 3])
def test_a_turn_by_quarters_equals_the_raster_rotated(name: str, quarter: int):
    # about a pixel centre, a turn by 90 degrees moves pixel centres onto pixel centres
    window = np.s_[12:37, 18:43]
    upright = shape_mask(name, 30.5, 24.5, 18, np.random.default_rng(1))[window]
    turned = turned_shape(name, 30.5, 24.5, 18, 90.0 * quarter, np.random.default_rng(1))
    assert turned.sum() == upright.sum() and (turned[window] == np.rot90(upright, quarter)).all()


def test_a_turned_shape_keeps_its_area_and_centre_and_zero_draws_no_angle():
    rng = np.random.default_rng(4)
    for _ in range(20):
        cx, cy, size, degrees = (
            rng.uniform(15, 49),
            rng.uniform(15, 33),
            rng.uniform(12, 18),
            rng.uniform(-180, 180),
        )
        upright = shape_mask("hexagon", cx, cy, size, rng)
        turned = turned_shape("hexagon", cx, cy, size, degrees, rng)
        assert abs(int(turned.sum()) - int(upright.sum())) <= 0.12 * upright.sum()
        assert np.abs(np.argwhere(turned).mean(0) - (cy - 0.5, cx - 0.5)).max() < 0.6
    # a square turned by 45 degrees covers what a diamond of its diagonal does
    square = turned_shape("square", 30.2, 22.7, 15, 45.0, rng)
    diamond = shape_mask("diamond", 30.2, 22.7, 15 * np.sqrt(2), rng)
    assert (square ^ diamond).sum() <= 0.06 * diamond.sum()
    # upright scenes draw no angle: the stream, and so every pixel, stays as it was
    one, other = np.random.default_rng(9), np.random.default_rng(9)
    assert (random_shape("star", (12, 18), one) == random_shape("star", (12, 18), other, 0.0)).all()
    assert one.random() == other.random()


def test_bank_shapes_differ_from_each_other():
    masks = {name: shape_mask(name, 30, 24, 19.0, np.random.default_rng(0)) for name in BANK}
    assert len(BANK) >= 11 and BANK[:5] == ("circle", "square", "triangle", "star", "diamond")
    assert len({mask.tobytes() for mask in masks.values()}) == len(BANK)


def test_scenes_read_back_with_classes_labels_and_counts_that_agree(apart: Path):
    assert (apart / "classes.txt").read_text() == "".join(f"{name}\n" for name in NAMES)
    counts, several_classes = [], 0
    for _, mask, labels in _items(apart):
        present = [int(v) for v in np.unique(mask) if v]
        assert set(present) <= set(range(1, len(NAMES) + 1))
        assert labels == [NAMES[v - 1] for v in present]  # each class once, classes.txt order
        per_class, together = _pieces(mask)
        assert per_class == together  # no two objects touch, not even at a corner
        counts.append(per_class)
        several_classes += len(labels) > 1
    assert min(counts) >= 2 and max(counts) <= 4 and len(set(counts)) > 1
    assert several_classes > 0


class Black:
    """A black background source."""

    def sample(self, rng: np.random.Generator) -> np.ndarray:
        return np.zeros((HEIGHT, WIDTH, 3), dtype=np.uint8)


def test_later_objects_cover_at_most_max_overlap_of_each_earlier_one(monkeypatch):
    drawn: list[np.ndarray] = []

    def recording_paint(image: np.ndarray, mask: np.ndarray, rng: np.random.Generator):
        drawn.append(mask)
        return paint(image, mask, rng)

    monkeypatch.setattr(multi_object, "paint", recording_paint)
    spec = scene_spec(("square", "circle", "ring"), (5, 6), (20, 26), 0.4)
    shares = []
    for index in range(12):
        drawn.clear()
        _, mask, _ = draw_scene(Black(), 0, "train", index, spec)
        later = np.zeros((HEIGHT, WIDTH), dtype=bool)  # what the objects drawn after cover
        for own in reversed(drawn):
            visible = own & ~later
            shares.append(1 - visible.sum() / own.sum())
            assert ndimage.label(visible, EIGHT)[1] == 1  # neither hidden nor cut in two
            assert len(np.unique(mask[visible])) == 1 and mask[visible][0] > 0  # it owns them
            later |= own
    assert 0 < max(shares) <= 0.4


def test_a_full_image_holds_fewer_objects_but_never_none():
    spec = scene_spec(("square", "hexagon"), (12, 12), (30, 40), 0.0)
    counts = [_pieces(draw_scene(Black(), 0, "val", index, spec)[1]) for index in range(8)]
    assert all(1 <= per_class == together < 12 for per_class, together in counts)


def test_a_place_is_taken_only_within_the_overlap_and_touch_rules():
    owner = np.full((HEIGHT, WIDTH), -1, dtype=np.int16)
    owner[10:20, 10:20] = 0  # one earlier object of 100 px

    def box(rows: slice, cols: slice) -> np.ndarray:
        mask = np.zeros((HEIGHT, WIDTH), dtype=bool)
        mask[rows, cols] = True
        return mask

    covers_30 = box(slice(10, 20), slice(17, 25))
    assert _fits(covers_30, owner, [100], 0.3) and not _fits(covers_30, owner, [100], 0.29)
    assert not _fits(box(slice(10, 20), slice(20, 25)), owner, [100], 0.0)  # touches it
    assert not _fits(box(slice(20, 25), slice(20, 25)), owner, [100], 0.0)  # at a corner
    assert _fits(box(slice(10, 20), slice(21, 25)), owner, [100], 0.0)
    assert not _fits(box(slice(14, 16), slice(5, 25)), owner, [100], 0.5)  # cuts it in two


def test_same_seed_gives_identical_bytes_other_seed_differs(apart: Path, tmp_path: Path):
    scene = {"classes": NAMES, "objects": (2, 4), "max_overlap": 0.0}
    assert _files(_generate(tmp_path / "again", **scene)) == _files(apart)
    other = _files(_generate(tmp_path / "other", seed=4, **scene))
    assert other["images/train/00000.png"] != _files(apart)["images/train/00000.png"]


def test_the_recipe_reuses_same_settings_and_refuses_others(apart: Path, monkeypatch):
    recipe = json.loads((apart / MARKER).read_text())
    assert recipe["classes"] == list(NAMES) and recipe["objects"] == [2, 4]
    monkeypatch.setattr(gen, "write_scene", lambda *a: pytest.fail("regenerated"))
    assert _generate(apart, classes=list(NAMES), objects=[2, 4], max_overlap=0) == apart
    for other in (
        {"classes": NAMES, "objects": (2, 4), "max_overlap": 0.2},
        {"classes": NAMES[::-1], "objects": (2, 4)},
        {"classes": NAMES, "objects": (2, 4), "size_range": (10, 14)},
        {},
    ):
        with pytest.raises(DatasetExistsError, match="generated with"):
            _generate(apart, **other)


@pytest.mark.parametrize(
    ("scene", "message"),
    [
        ({"classes": ["hexagon", "hexagn"]}, r"unknown shape\(s\) \['hexagn'\]; the bank has: "
         "circle, square, triangle, star, diamond, hexagon"),
        ({"classes": "hexagon"}, "classes must be a list of one or more shape names"),
        ({"classes": []}, "classes must be a list of one or more shape names"),
        ({"classes": ["star", "ring", "star"]}, r"each shape once, got \['star'\] twice"),
        ({"objects": (0, 2)}, "objects must be at least 1"),
        ({"objects": (3, 2)}, r"objects must be \(min, max\) with min <= max"),
        ({"size_range": (4, 10)}, "size_range must lie from 8 to 48"),
        ({"max_overlap": 1.0}, "max_overlap must be >= 0 and < 1"),
        ({"classes": NAMES, "rotation": 181}, "rotation must be a number of degrees from 0 to 180"),
        ({"classes": NAMES, "rotation": -5}, "rotation must be a number of degrees from 0 to 180"),
        ({"rotation": 30}, "from 0 to 15 .a square turned by 45 is a diamond, and both are"),
        ({"classes": ["square", "diamond"], "rotation": 16}, "rotation must be .* to 15"),
    ],
)  # fmt: skip
def test_bad_settings_are_named_and_nothing_is_written(tmp_path: Path, scene: dict, message):
    with pytest.raises(ConfigError, match=message):
        _generate(tmp_path / "s", **scene)
    assert list(tmp_path.iterdir()) == []


def test_classes_with_one_object_each_are_balanced(tmp_path: Path):
    names = ("ring", "heart", "arrow")
    root = _generate(tmp_path / "s", classes=names)
    labels = []
    for split, mask, lines in _items(root):
        assert len(lines) == 1 and set(np.unique(mask)) == {0, names.index(lines[0]) + 1}
        labels.append((split, lines[0]))
    assert Counter(labels) == {(split, name): 2 for split in SIZES for name in names}
    assert (root / "classes.txt").read_text() == "ring\nheart\narrow\n"


def test_cli_flags_reach_the_generator(tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    args = ["--root", str(tmp_path / "cli"), "--train", "4", "--val", "0", "--test", "0"]
    scene = ["--classes", "hexagon,cross,star", "--objects", "1", "3", "--max-overlap", "0.2"]
    root = gen.main(
        [*args, *scene, "--size-range", "10", "16", "--rotation", "90", "--no-progress"]
    )
    recipe = json.loads((root / MARKER).read_text())
    assert recipe["classes"] == ["hexagon", "cross", "star"] and recipe["objects"] == [1, 3]
    assert recipe["size_range"] == [10.0, 16.0] and recipe["max_overlap"] == 0.2
    assert recipe["rotation"] == 90.0
    assert (root / "classes.txt").read_text() == "hexagon\ncross\nstar\n"
    with pytest.raises(SystemExit) as exit_info:
        gen.main(["--root", str(tmp_path / "bad"), "--classes", "hexagon,blob", "--no-progress"])
    error = capsys.readouterr().err
    assert exit_info.value.code == 2 and "unknown shape(s) ['blob']" in error
    assert not (tmp_path / "bad").exists()


def test_the_datamodule_passes_its_scene_arguments_to_the_generator(tmp_path: Path):
    root = tmp_path / "scenes"
    dm = ShapesDataModule(
        str(root), train_size=4, val_size=2, test_size=2, shapes=["heart", "arrow"],
        objects=(1, 2), object_size=(10, 14), max_overlap=0.1, rotation=45,
    )  # fmt: skip
    dm.prepare_data()
    recipe = json.loads((root / MARKER).read_text())
    assert (recipe["classes"], recipe["objects"]) == (["heart", "arrow"], [1, 2])
    assert (recipe["size_range"], recipe["max_overlap"]) == ([10.0, 14.0], 0.1)
    assert recipe["rotation"] == 45.0
    assert (root / "classes.txt").read_text() == "heart\narrow\n"


@pytest.mark.parametrize(
    ("setting", "message"),
    [
        ({"shapes": ["blob"]}, r"data.shapes: unknown shape\(s\) \['blob'\]; the bank has"),
        ({"objects": (2, 1)}, r"data.objects must be \(min, max\)"),
        ({"object_size": (10, 60)}, "data.object_size must lie from 8 to 48"),
        ({"max_overlap": -0.1}, "data.max_overlap must be >= 0"),
        ({"shapes": ["ring"], "rotation": 200}, "data.rotation must be .* from 0 to 180"),
        ({"rotation": 20}, r"data.rotation must be .* from 0 to 15 \(a square turned by 45"),
    ],
)
def test_the_datamodule_names_a_bad_scene_argument(tmp_path: Path, setting: dict, message):
    with pytest.raises(ConfigError, match=message):
        ShapesDataModule(str(tmp_path / "s"), **setting)


def test_the_course_layout_turns_its_shapes_too_and_records_it(tmp_path: Path):
    upright = _generate(tmp_path / "upright")
    turned = _generate(tmp_path / "turned", rotation=15)
    assert json.loads((turned / MARKER).read_text())["rotation"] == 15.0
    assert "rotation" not in json.loads((upright / MARKER).read_text())
    assert not (turned / "classes.txt").exists()
    changed = 0
    for path in sorted((turned / "masks").rglob("*.png")):
        mask = np.asarray(Image.open(path))
        assert set(np.unique(mask)) == {0, 255} and ndimage.label(mask, EIGHT)[1] == 1
        changed += not np.array_equal(
            mask, np.asarray(Image.open(upright / path.relative_to(turned)))
        )
    assert changed >= len(list((turned / "masks").rglob("*.png"))) // 2
