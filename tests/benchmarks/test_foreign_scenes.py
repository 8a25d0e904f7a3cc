"""The foreign scenes generator: folders in the `classes.txt` layout with palette index masks,
void only on rims, labels that match the masks, objects counted as asked, deterministic and
atomic."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from helpers.benchmark_scripts import load_benchmark
from PIL import Image
from scipy import ndimage

fs = load_benchmark("foreign_scenes")

SIZES = {"train": 6, "val": 12}
#: Objects per image for the counting checks: apart, so each object is one region.
APART = fs.SceneConfig(objects=(2, 4), max_overlap=0.0)
EIGHT = np.ones((3, 3), dtype=bool)


def _files(root: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()
    }


def _masks(root: Path, split: str) -> dict[str, Image.Image]:
    masks = {}
    for path in sorted((root / "masks" / split).glob("*.png")):
        with Image.open(path) as mask:
            mask.load()
            masks[path.stem] = mask
    return masks


@pytest.fixture(scope="module")
def scenes_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("scenes") / "ds"
    return fs.generate_foreign_scenes(root, SIZES, progress=False)


@pytest.fixture(scope="module")
def apart_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("apart") / "ds"
    return fs.generate_foreign_scenes(root, {"val": 20}, seed=3, config=APART, progress=False)


@pytest.fixture(scope="module")
def backgrounds() -> fs.ForeignBackgrounds:
    return fs.ForeignBackgrounds()


def test_files_follow_the_classes_layout(scenes_root: Path) -> None:
    names = (scenes_root / fs.CLASSES_FILE).read_text().splitlines()
    assert names == ["Hexagon", "Pentagon", "Cross", "Arrow", "Crescent", "Heart", "Ring"]
    recipe = json.loads((scenes_root / fs.RECIPE).read_text())
    assert recipe["objects"] == [1, 3] and recipe["max_overlap"] == 0.15 and recipe["void_rim"]
    assert not (scenes_root / "images" / "test").exists()  # splits of size 0 are left out
    for split, count in SIZES.items():
        masks = _masks(scenes_root, split)
        assert list(masks) == [f"img_{i:06d}" for i in range(count)]
        for stem, mask in masks.items():
            with Image.open(scenes_root / "images" / split / f"{stem}.png") as image:
                assert image.mode == "RGB" and image.size == (fs.WIDTH, fs.HEIGHT)
            assert mask.mode == "P" and mask.size == (fs.WIDTH, fs.HEIGHT)
            palette = np.array(mask.getpalette()).reshape(-1, 3)
            assert palette[1].tolist() == [128, 0, 0] and palette[255].tolist() == [224, 224, 192]
            values = set(np.unique(np.asarray(mask)).tolist())
            assert values <= {0, 255, *range(1, len(names) + 1)}
            label = (scenes_root / "labels" / split / f"{stem}.txt").read_text().splitlines()
            assert label == [names[v - 1] for v in sorted(values - {0, 255})], stem


def test_void_lies_only_on_rims(scenes_root: Path, apart_root: Path) -> None:
    """Every 255 pixel has a neighbour (8-adjacent) that is not 255: the void is a rim, never a
    region of its own."""
    voids = 0
    for root in (scenes_root, apart_root):
        for mask in _masks(root, "val").values():
            void = np.asarray(mask) == fs.VOID
            inner = ndimage.binary_erosion(void, EIGHT, border_value=1)
            assert not inner.any()
            voids += void.sum()
    assert voids > 0


def test_mask_values_follow_the_top_objects_coverage(backgrounds: fs.ForeignBackgrounds) -> None:
    """A pixel holds the class of the top object covering more than 1/4 of it where that one
    covers at least 3/4, 255 where it covers less; with no rim, the top object covering half."""
    for void_rim in (True, False):
        config = fs.SceneConfig(objects=(3, 3), void_rim=void_rim)
        for index in range(8):
            scene = fs.draw_scene(backgrounds, 0, "val", index, config)
            expected = np.zeros_like(scene.mask)
            for obj in scene.objects:
                value = config.classes.index(obj.label) + 1
                if void_rim:
                    expected[obj.cover > fs.RIM[0]] = fs.VOID
                    expected[obj.cover >= fs.RIM[1]] = value
                else:
                    expected[obj.cover >= 0.5] = value
            np.testing.assert_array_equal(scene.mask, expected)
            assert (fs.VOID in scene.mask) == void_rim


def test_objects_apart_count_as_asked(apart_root: Path, backgrounds: fs.ForeignBackgrounds) -> None:
    """At max_overlap 0 every object is one 8-connected region of its class and its rim, holding
    no other class: the regions count the objects."""
    counts = Counter()
    for mask in _masks(apart_root, "val").values():
        values = np.asarray(mask)
        regions, count = ndimage.label(values > 0, EIGHT)
        for region in range(1, count + 1):
            assert len(set(values[regions == region].tolist()) - {fs.VOID}) == 1
        assert APART.objects[0] <= count <= APART.objects[1]
        counts[count] += 1
    assert set(counts) == {2, 3, 4}
    for index in range(10):
        scene = fs.draw_scene(backgrounds, 3, "val", index, APART)
        assert ndimage.label(scene.mask > 0, EIGHT)[1] == len(scene.objects)


def test_overlaps_stay_small_and_objects_visible(backgrounds: fs.ForeignBackgrounds) -> None:
    config = fs.SceneConfig(objects=(3, 3))
    overlapping = 0
    for index in range(40):
        scene = fs.draw_scene(backgrounds, 1, "train", index, config)
        assert not (scene.mask[[0, -1]].any() or scene.mask[:, [0, -1]].any())  # in the frame
        objects = scene.objects
        for i, obj in enumerate(objects):
            hidden = np.zeros_like(obj.solid)
            for later in objects[i + 1 :]:
                hidden |= later.solid
                shared = np.minimum(obj.cover, later.cover).sum()
                assert shared <= config.max_overlap * min(obj.cover.sum(), later.cover.sum())
                overlapping += shared > 0
            assert (obj.solid & ~hidden).sum() >= fs.MIN_VISIBLE * obj.solid.sum()
    assert overlapping >= 5  # the allowance is used, not only objects apart


def test_coverage_sums_to_the_hexagons_area() -> None:
    parts = fs.outline("hexagon", np.random.default_rng(0))
    cover = fs.coverage(parts, 16.0, 30.3, 22.7, fs.HEIGHT, fs.WIDTH)
    assert cover.min() == 0 and cover.max() == 1
    assert cover.sum() == pytest.approx(3 * np.sqrt(3) / 2 * 8.0**2, rel=0.01)


def test_same_seed_same_bytes_other_seed_differs(scenes_root: Path, tmp_path: Path) -> None:
    reference = _files(scenes_root)
    again = fs.generate_foreign_scenes(tmp_path / "again", SIZES, seed=0, progress=False)
    assert _files(again) == reference
    other = _files(fs.generate_foreign_scenes(tmp_path / "other", SIZES, seed=1, progress=False))
    assert other.keys() == reference.keys()
    images = [key for key in reference if key.startswith("images")]
    assert all(other[key] != reference[key] for key in images)


def test_existing_root_is_refused_untouched(tmp_path: Path) -> None:
    root = tmp_path / "taken"
    root.mkdir()
    (root / "notes.txt").write_text("mine")
    with pytest.raises(FileExistsError, match="refusing to overwrite"):
        fs.generate_foreign_scenes(root, {"val": 3}, progress=False)
    assert _files(root) == {"notes.txt": b"mine"}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["taken"]
    (tmp_path / "empty").mkdir()  # an empty folder is fine to fill
    filled = fs.generate_foreign_scenes(tmp_path / "empty", {"val": 3}, progress=False)
    assert len(list((filled / "masks" / "val").iterdir())) == 3


def test_crash_midway_leaves_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    written = []

    def failing_writer(*args) -> None:
        if len(written) == 3:
            raise OSError("disk full")
        written.append(args)

    monkeypatch.setattr(fs, "write_scene", failing_writer)
    with pytest.raises(OSError, match="disk full"):
        fs.generate_foreign_scenes(tmp_path / "ds", {"val": 6}, progress=False)
    assert list(tmp_path.iterdir()) == []


def test_cli_picks_classes_objects_rim_and_size(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    argv = ["--root", str(tmp_path / "cli"), "--train", "0", "--val", "4", "--test", "0"]
    options = ["--classes", "Ring", "cross", "--objects", "2", "2", "--no-void-rim"]
    root = fs.main(argv + options + ["--height", "60", "--width", "80"])
    assert "Generating foreign scenes" in capsys.readouterr().err
    assert (root / fs.CLASSES_FILE).read_text() == "Ring\nCross\n"
    recipe = json.loads((root / fs.RECIPE).read_text())
    assert recipe["classes"] == ["ring", "cross"] and recipe["objects"] == [2, 2]
    assert not recipe["void_rim"] and (recipe["height"], recipe["width"]) == (60, 80)
    for mask in _masks(root, "val").values():
        assert mask.size == (80, 60) and set(np.unique(np.asarray(mask)).tolist()) <= {0, 1, 2}
    with pytest.raises(FileExistsError):
        fs.main(["--root", str(root), "--no-progress"])


@pytest.mark.parametrize(
    "options",
    [["--classes", "circle"], ["--classes", "ring", "Ring"], ["--objects", "0", "2"]]
    + [["--objects", "3", "2"], ["--max-overlap", "1"], ["--height", "20"]],
)
def test_cli_refuses_bad_arguments(options: list[str], tmp_path: Path) -> None:
    with pytest.raises(SystemExit):
        fs.main(["--root", str(tmp_path / "bad"), "--no-progress", *options])
    assert not (tmp_path / "bad").exists()
