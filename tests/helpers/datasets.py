"""The tiny generated dataset's split sizes, shared by the fixture that builds it
(`tests/conftest.py`) and the tests that count its images; and writers of hand-made folders."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

TINY_SIZES = {"train": 20, "val": 10, "test": 10}


def write_item(root: Path, split: str, stem: str, mask: Image.Image | np.ndarray, label: str):
    """One item of the shapes layout: a mid-grey RGB image of the mask's size, the mask (an
    array is saved as a greyscale PNG) and the label file's text as given."""
    if isinstance(mask, np.ndarray):
        mask = Image.fromarray(mask.astype(np.uint8))
    for kind in ("images", "masks", "labels"):
        (root / kind / split).mkdir(parents=True, exist_ok=True)
    Image.new("RGB", mask.size, (128, 128, 128)).save(root / "images" / split / f"{stem}.png")
    mask.save(root / "masks" / split / f"{stem}.png")
    (root / "labels" / split / f"{stem}.txt").write_text(label, encoding="utf-8")


def write_classes(root: Path, *names: str) -> Path:
    """ROOT/classes.txt naming `names`, one per line."""
    root.mkdir(parents=True, exist_ok=True)
    path = root / "classes.txt"
    path.write_text("".join(f"{name}\n" for name in names), encoding="utf-8")
    return path


#: The classes of `write_class_map_folder`.
CLASS_MAP_CLASSES = ("Bar", "Block", "Dot")
CLASS_MAP_COLOURS = {1: (220, 40, 40), 2: (40, 200, 60), 3: (40, 80, 230)}


def _class_map_scene(
    rng: np.random.Generator, empty: bool = False
) -> tuple[np.ndarray, np.ndarray]:
    """A 32x48 image of 1-3 flat objects (a class each: a bar, a block, a dot) over noise, or of
    none when `empty`."""
    image = rng.integers(0, 60, (32, 48, 3)).astype(np.uint8)
    mask = np.zeros((32, 48), dtype=np.uint8)
    ys, xs = np.mgrid[:32, :48]
    for _ in range(0 if empty else rng.integers(1, 4)):
        value = int(rng.integers(1, 4))
        x, y = int(rng.integers(6, 42)), int(rng.integers(6, 26))
        if value == 1:
            shape = (abs(xs - x) <= 5) & (abs(ys - y) <= 1)
        elif value == 2:
            shape = (abs(xs - x) <= 3) & (abs(ys - y) <= 3)
        else:
            shape = (xs - x) ** 2 + (ys - y) ** 2 <= 6
        mask[shape] = value
        image[shape] = CLASS_MAP_COLOURS[value]
    return image, mask


def write_class_map_folder(root: Path, sizes: dict[str, int], empty_every: int = 0) -> Path:
    """A folder of the three classes above, 1-3 objects per image, index masks as palette PNGs,
    its classes.txt and labels listing each image's classes; with `empty_every` n, every n-th
    image of a split holds no object (an empty label)."""
    rng = np.random.default_rng(0)
    root.mkdir(parents=True)
    (root / "classes.txt").write_text("\n".join(CLASS_MAP_CLASSES) + "\n")
    for split, count in sizes.items():
        for kind in ("images", "masks", "labels"):
            (root / kind / split).mkdir(parents=True)
        for index in range(count):
            image, mask = _class_map_scene(rng, bool(empty_every) and index % empty_every == 0)
            stem = f"{split}_{index:03d}"
            Image.fromarray(image).save(root / "images" / split / f"{stem}.png")
            palette = Image.fromarray(mask).convert("P")  # index masks as palette PNGs
            palette.save(root / "masks" / split / f"{stem}.png")
            names = [CLASS_MAP_CLASSES[v - 1] for v in sorted(set(mask.ravel().tolist()) - {0})]
            (root / "labels" / split / f"{stem}.txt").write_text("\n".join(names) + "\n")
    return root
