"""The generator: determinism, layout, shapes drawn right, atomic output, CLI."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from helpers.datasets import TINY_SIZES
from PIL import Image

from lit_gradcam.data import CLASSES
from lit_gradcam.data import generate as gen
from lit_gradcam.data.backgrounds import HEIGHT, WIDTH
from lit_gradcam.data.generate import MARKER, draw_sample, generate_dataset
from lit_gradcam.data.shape_bank import shape_mask


def _files(root: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()
    }


class FlatBackground:
    """A one-colour background, so a sample's shape pixels can be read off exactly."""

    def __init__(self, value: int) -> None:
        self.value = value

    def sample(self, rng: np.random.Generator) -> np.ndarray:
        return np.full((HEIGHT, WIDTH, 3), self.value, dtype=np.uint8)


def test_same_seed_gives_identical_bytes_other_seed_differs(tiny_root: Path, tmp_path: Path):
    again = generate_dataset(tmp_path / "again", TINY_SIZES, seed=0, progress=False)
    other = generate_dataset(tmp_path / "other", TINY_SIZES, seed=1, progress=False)
    reference = _files(tiny_root)
    assert len(reference) == 3 * sum(TINY_SIZES.values()) + 1  # + the marker
    assert _files(again) == reference
    other_files = _files(other)
    assert other_files.keys() == reference.keys()
    images = [k for k in reference if k.startswith("images")]
    assert all(other_files[k] != reference[k] for k in images)


def test_one_split_size_does_not_change_another(tiny_root: Path, tmp_path: Path):
    sizes = {"train": 25, "val": 3, "test": 10}
    resized = _files(generate_dataset(tmp_path / "resized", sizes, seed=0, progress=False))
    reference = _files(tiny_root)
    for key, data in reference.items():
        if not key.startswith(("images/val", "masks/val", "labels/val")) and key != MARKER:
            assert resized[key] == data, key
    assert resized["images/val/00002.png"] == reference["images/val/00002.png"]  # prefix kept


def test_layout_values_labels_and_balance(tiny_root: Path):
    for split, count in TINY_SIZES.items():
        stems = sorted(p.stem for p in (tiny_root / "images" / split).glob("*.png"))
        assert stems == [f"{i:05d}" for i in range(count)]
        labels = [(tiny_root / "labels" / split / f"{s}.txt").read_text().strip() for s in stems]
        assert Counter(labels) == {name: count // len(CLASSES) for name in CLASSES}
        for stem in stems:
            image = Image.open(tiny_root / "images" / split / f"{stem}.png")
            mask = Image.open(tiny_root / "masks" / split / f"{stem}.png")
            assert (image.mode, image.size) == ("RGB", (WIDTH, HEIGHT))
            assert (mask.mode, mask.size) == ("L", (WIDTH, HEIGHT))
            values = set(np.unique(np.asarray(mask)).tolist())
            assert values == {0, 255}
    recipe = json.loads((tiny_root / MARKER).read_text())
    assert recipe["split_sizes"] == TINY_SIZES and recipe["seed"] == 0
    # the scene settings left at their defaults: the recipe folders made before them still match
    assert set(recipe) == {"format_version", "seed", "split_sizes", "background"}
    assert not (tiny_root / "classes.txt").exists()


def test_shape_is_one_flat_colour_with_hard_edges_exactly_where_the_mask_is():
    background = FlatBackground(0)
    for index in range(60):
        image, mask, label = draw_sample(background, 3, "train", index)
        assert label in CLASSES
        assert mask.any()
        outside = image[~mask]
        inside = np.unique(image[mask], axis=0)
        assert (outside == 0).all()
        assert len(inside) == 1  # flat colour, no antialiased rim
        if (inside != 0).any():
            assert (image.any(-1) == mask).all()


def test_sizes_translucency_and_border_cuts_vary_as_specified():
    dark, light = FlatBackground(0), FlatBackground(255)
    alphas, widths, cut = [], [], 0
    for index in range(300):
        on_dark, mask, label = draw_sample(dark, 0, "train", index)
        on_light, _, _ = draw_sample(light, 0, "train", index)
        colour_dark = on_dark[mask][0].astype(float)
        colour_light = on_light[mask][0].astype(float)
        alphas.append(1 - (colour_light - colour_dark).mean() / 255)
        rows, cols = np.flatnonzero(mask.any(1)), np.flatnonzero(mask.any(0))
        touches = rows[0] == 0 or cols[0] == 0 or rows[-1] == HEIGHT - 1 or cols[-1] == WIDTH - 1
        cut += touches
        if not touches:
            widths.append(cols[-1] - cols[0] + 1)
    alphas = np.array(alphas)
    translucent = alphas[alphas < 0.99]
    assert 0.25 < len(translucent) / len(alphas) < 0.42
    assert translucent.min() > 0.48 and translucent.max() < 0.82
    assert 11 <= min(widths) <= 14 and 18 <= max(widths) <= 20
    assert 0.05 < cut / 300 < 0.5


@pytest.mark.parametrize("name", CLASSES)
def test_shapes_are_upright_and_symmetric(name: str):
    mask = shape_mask(name, WIDTH / 2, HEIGHT / 2, 17.0, np.random.default_rng(0))
    rows, cols = np.flatnonzero(mask.any(1)), np.flatnonzero(mask.any(0))
    height, width = rows[-1] - rows[0] + 1, cols[-1] - cols[0] + 1
    assert (mask == mask[:, ::-1]).all()  # left-right symmetric: upright, apex up
    assert 16 <= width <= 18
    row_widths = mask.sum(1)[rows]
    area = mask.sum()
    if name == "square":
        assert height == width and area == width * height
    elif name == "circle":
        assert abs(area - np.pi * 8.5**2) < 12 and row_widths[0] <= width / 2
    elif name == "diamond":
        assert abs(area - 17**2 / 2) < 12 and row_widths.max() == width
        assert (row_widths == row_widths[::-1]).all() and row_widths[0] <= 2
    elif name == "triangle":
        assert row_widths[0] <= 2 and row_widths[-1] >= width - 1
        assert (np.diff(row_widths) >= 0).all()
    else:  # star: one point up, two arms wider than the body below them, two feet
        assert row_widths[0] <= 2 and row_widths.max() == width
        bottom = mask[rows[-1], cols[0] : cols[-1] + 1]
        assert bottom.sum() < width / 2 and not bottom[width // 2]  # the gap between the feet


def test_crash_midway_leaves_no_dataset_and_no_temp_dir(tmp_path: Path, monkeypatch):
    written = []

    def failing_writer(*args) -> None:
        if len(written) == 7:
            raise OSError("disk full")
        written.append(args)

    monkeypatch.setattr(gen, "write_sample", failing_writer)
    with pytest.raises(OSError, match="disk full"):
        generate_dataset(tmp_path / "shapes", TINY_SIZES, progress=False)
    assert list(tmp_path.iterdir()) == []


def test_existing_dataset_is_reused_but_never_silently_replaced(tiny_copy: Path, monkeypatch):
    def no_writes(*args) -> None:
        raise AssertionError("regenerated an existing dataset")

    monkeypatch.setattr(gen, "write_sample", no_writes)
    assert generate_dataset(tiny_copy, TINY_SIZES, progress=False) == tiny_copy
    with pytest.raises(FileExistsError, match="generated with"):
        generate_dataset(tiny_copy, {"train": 5}, progress=False)
    (tiny_copy / MARKER).unlink()  # e.g. the homework folder: not ours to overwrite
    with pytest.raises(FileExistsError, match="not a complete generated dataset"):
        generate_dataset(tiny_copy, TINY_SIZES, progress=False)


def test_bad_arguments_are_rejected(tmp_path: Path):
    with pytest.raises(ValueError, match="unknown background"):
        generate_dataset(tmp_path / "a", TINY_SIZES, background="noise", progress=False)
    with pytest.raises(ValueError, match=">= 0"):
        generate_dataset(tmp_path / "b", {"train": -1}, progress=False)
    assert list(tmp_path.iterdir()) == []


def test_cli_writes_the_requested_sizes_with_a_progress_bar(tmp_path: Path, capsys):
    args = ["--root", str(tmp_path / "cli"), "--seed", "2", "--train", "5", "--val", "5"]
    root = gen.main([*args, "--test", "0", "--background", "natural"])
    assert root == tmp_path / "cli"
    assert len(list((root / "images" / "train").iterdir())) == 5
    assert list((root / "images" / "test").iterdir()) == []
    assert json.loads((root / MARKER).read_text())["seed"] == 2
    assert "Generating shapes" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("setup", "args", "message"),
    [
        ("file", ["--train", "2"], "is a file; expected a folder to generate the dataset in"),
        (None, ["--train", "-5"], "seed and split sizes must be >= 0"),
        ("other sizes", ["--train", "3"], "holds a dataset generated with"),
        ("under a file", ["--train", "2"], "cannot write the dataset to"),
    ],
)
def test_the_command_line_says_what_is_wrong_in_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], setup: str | None, args: list[str], message
) -> None:
    """`python -m lit_gradcam.data.generate` with a bad root or size: one `error:` line, exit 2,
    and a file or dataset already there is left as it was."""
    root = tmp_path / "shapes"
    if setup == "file":
        root.write_text("my notes\n")
    elif setup == "other sizes":
        generate_dataset(root, {"train": 2, "val": 1, "test": 1}, progress=False)
    elif setup == "under a file":
        (tmp_path / "a_file").write_text("my notes\n")
        root = tmp_path / "a_file" / "shapes"
    before = sorted((p, p.read_bytes()) for p in tmp_path.rglob("*") if p.is_file())
    with pytest.raises(SystemExit) as exit_info:
        gen.main(["--root", str(root), "--val", "1", "--test", "1", "--no-progress", *args])
    error = capsys.readouterr().err
    assert exit_info.value.code == 2 and message in error and "Traceback" not in error
    assert sorted((p, p.read_bytes()) for p in tmp_path.rglob("*") if p.is_file()) == before
