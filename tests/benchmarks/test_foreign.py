"""The foreign generator: readable by ShapesFolder, anti-aliased, deterministic, atomic, and
independent of the training generator's photos."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import torch
from helpers.benchmark_scripts import load_benchmark
from PIL import Image

from lit_gradcam.data import CLASSES, ShapesFolder
from lit_gradcam.data.backgrounds import NATURAL_PHOTOS

fg = load_benchmark("foreign")

SIZES = {"train": 10, "val": 15}


def _files(root: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()
    }


class Flat:
    """A one-colour background source, so the shape's pixels can be read off exactly."""

    def sample(self, rng: np.random.Generator) -> tuple[np.ndarray, str]:
        return np.zeros((fg.HEIGHT, fg.WIDTH, 3), np.uint8), "flat"


@pytest.fixture(scope="module")
def foreign_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return fg.generate_foreign(tmp_path_factory.mktemp("foreign") / "ds", SIZES, progress=False)


@pytest.fixture(scope="module")
def backgrounds() -> fg.ForeignBackgrounds:
    return fg.ForeignBackgrounds()


def test_shapes_folder_reads_it_with_balanced_classes(foreign_root: Path) -> None:
    for split, count in SIZES.items():
        dataset = ShapesFolder(foreign_root, split, normalize=False)
        assert len(dataset) == count
        assert dataset.stems[:2] == ["img_000000", "img_000001"]
        assert Counter(dataset.labels) == {i: count // len(CLASSES) for i in range(len(CLASSES))}
        image, _, mask = dataset[0]
        assert image.shape == (3, fg.HEIGHT, fg.WIDTH) and mask.shape == (fg.HEIGHT, fg.WIDTH)
        masks = torch.stack([dataset[i][2] for i in range(count)])
        assert (masks.flatten(1).sum(1) >= 30).all()
        border = masks[:, [0, -1], :].any() or masks[:, :, [0, -1]].any()
        assert not border  # every shape lies wholly inside the frame


def test_files_differ_in_form_from_the_training_generator(foreign_root: Path) -> None:
    mask = Image.open(foreign_root / "masks" / "val" / "img_000000.png")
    assert mask.mode == "L" and set(np.unique(np.asarray(mask)).tolist()) == {0, 1}
    label = (foreign_root / "labels" / "val" / "img_000000.txt").read_text()
    assert label.strip().lower() in CLASSES and label.strip() != label.strip().lower()
    assert (foreign_root / fg.RECIPE).is_file()
    assert not (foreign_root / "images" / "test").exists()  # splits of size 0 are left out


def test_edges_are_anti_aliased_and_the_mask_is_half_coverage(
    backgrounds: fg.ForeignBackgrounds,
) -> None:
    """Opaque shapes on black: the edge has intermediate values all round, and the mask holds
    exactly the pixels at least half as bright as the shape's colour."""
    checked = 0
    for index in range(60):
        label = CLASSES[index % len(CLASSES)]
        image, mask, info = fg.draw_sample(Flat(), 1, "val", index, label)  # type: ignore[arg-type]
        if info["alpha"] < 1:
            continue
        channel = int(image[mask].max(0).argmax())
        values, colour = image[..., channel].astype(int), int(image[mask].max(0)[channel])
        if colour < 120:
            continue
        edge = mask & ~(
            np.roll(mask, 1, 0) & np.roll(mask, -1, 0) & np.roll(mask, 1, 1) & np.roll(mask, -1, 1)
        )
        between = (values > 0) & (values < colour)
        assert between.sum() >= 0.5 * edge.sum(), (index, label)
        near_half = np.abs(values - colour / 2) <= 1
        assert ((values >= colour / 2) == mask)[~near_half].all(), (index, label)
        checked += 1
    assert checked >= 20


@pytest.mark.parametrize(("name", "area"), [("circle", np.pi * 7.5**2), ("square", 15.0**2)])
def test_coverage_sums_to_the_area(name: str, area: float) -> None:
    vertices = fg.outline(name, 15.0, np.random.default_rng(0))
    cover = fg.coverage(vertices, 15.0, 30.3, 22.7)
    assert cover.min() == 0 and cover.max() == 1
    assert cover.sum() == pytest.approx(area, rel=0.02)
    assert ((cover > 0) & (cover < 1)).sum() >= 0.9 * np.sqrt(area) * 4  # a soft rim all round


def test_statistics_of_shapes_and_backgrounds(backgrounds: fg.ForeignBackgrounds) -> None:
    infos = [
        fg.draw_sample(backgrounds, 0, "train", i, CLASSES[i % len(CLASSES)])[2] for i in range(300)
    ]
    alphas = np.array([info["alpha"] for info in infos])
    translucent = alphas[alphas < 1]
    assert 0.25 < len(translucent) / len(alphas) < 0.42
    assert translucent.min() >= 0.5 and translucent.max() <= 0.85
    sizes = np.array([info["size"] for info in infos])
    assert sizes.min() >= 12 and sizes.max() <= 20 and np.ptp(sizes) > 6
    kinds = Counter(info["background"] for info in infos)
    assert set(kinds) == {"photo", "noise", "gradient", "blobs"} and kinds["photo"] > 100


@pytest.mark.parametrize("name", ["square", "diamond", "triangle", "star"])
def test_only_triangles_and_stars_turn_a_little(name: str) -> None:
    turns = []
    for seed in range(40):
        vertices = fg.outline(name, 16.0, np.random.default_rng(seed))
        top = vertices[vertices[:, 1].argmin()]
        if name == "square":
            assert set(np.abs(vertices).ravel().tolist()) == {8.0}
            continue
        turns.append(np.degrees(np.arctan2(top[0], -top[1])))
    if name == "diamond":
        assert max(map(abs, turns)) == 0
    elif turns:
        assert max(map(abs, turns)) <= fg.MAX_TURN_DEGREES and np.std(turns) > 3


def test_same_seed_same_bytes_other_seed_differs(foreign_root: Path, tmp_path: Path) -> None:
    reference = _files(foreign_root)
    assert (
        _files(fg.generate_foreign(tmp_path / "again", SIZES, seed=0, progress=False)) == reference
    )
    other = _files(fg.generate_foreign(tmp_path / "other", SIZES, seed=1, progress=False))
    assert other.keys() == reference.keys()
    images = [key for key in reference if key.startswith("images")]
    assert all(other[key] != reference[key] for key in images)


def test_existing_root_is_refused_untouched(tmp_path: Path) -> None:
    root = tmp_path / "taken"
    root.mkdir()
    (root / "notes.txt").write_text("mine")
    with pytest.raises(FileExistsError, match="refusing to overwrite"):
        fg.generate_foreign(root, {"val": 5}, progress=False)
    assert _files(root) == {"notes.txt": b"mine"}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["taken"]
    (tmp_path / "empty").mkdir()  # an empty folder is fine to fill
    filled = fg.generate_foreign(tmp_path / "empty", {"val": 5}, progress=False)
    assert len(ShapesFolder(filled, "val")) == 5


def test_crash_midway_leaves_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    written = []

    def failing_writer(*args) -> None:
        if len(written) == 3:
            raise OSError("disk full")
        written.append(args)

    monkeypatch.setattr(fg, "write_sample", failing_writer)
    with pytest.raises(OSError, match="disk full"):
        fg.generate_foreign(tmp_path / "ds", {"val": 10}, progress=False)
    assert list(tmp_path.iterdir()) == []


def test_never_reads_the_training_generators_photos(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    opened = []
    real_open = Image.open

    def recording_open(fp, *args, **kwargs):
        opened.append(Path(fp).name if isinstance(fp, str | Path) else None)
        return real_open(fp, *args, **kwargs)

    monkeypatch.setattr(Image, "open", recording_open)
    fg.generate_foreign(tmp_path / "ds", {"val": 5}, progress=False)
    assert set(opened) == set(fg.GREY_PHOTOS + fg.COLOUR_PHOTOS)
    assert not set(opened) & set(NATURAL_PHOTOS)


def test_cli_shows_progress(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    root = fg.main(["--root", str(tmp_path / "cli"), "--train", "0", "--val", "5", "--test", "0"])
    assert sorted(p.name for p in (root / "images").iterdir()) == ["val"]
    assert "Generating foreign shapes" in capsys.readouterr().err
    with pytest.raises(FileExistsError):
        fg.main(["--root", str(root), "--no-progress"])


def test_two_object_scenes_hold_two_shapes_apart_drawn_from_their_seed() -> None:
    backgrounds = fg.ForeignBackgrounds()
    for index in range(20):
        image, masks, labels = fg.draw_two_objects(backgrounds, 0, "test", index)
        assert image.shape == (fg.HEIGHT, fg.WIDTH, 3) and masks.shape == (2, fg.HEIGHT, fg.WIDTH)
        assert all(label in CLASSES for label in labels)
        assert masks.sum((1, 2)).min() >= 40  # both shapes are there, wholly in the frame
        grown = torch.nn.functional.max_pool2d(torch.from_numpy(masks[:1]).float()[None], 3, 1, 1)
        assert not (grown[0, 0].numpy() > 0)[masks[1]].any()  # they do not even touch
    again = fg.draw_two_objects(backgrounds, 0, "test", 19)
    assert np.array_equal(again[0], image) and np.array_equal(again[1], masks)
