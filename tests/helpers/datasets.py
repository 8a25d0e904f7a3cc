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
