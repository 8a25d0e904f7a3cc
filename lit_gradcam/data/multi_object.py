"""Scenes of one or several shapes of the bank, written with a class list and index masks.

    ROOT/classes.txt                 the classes, one per line, in label-index order
    ROOT/masks/{split}/{stem}.png    8-bit grey: 0 background, i the i-th class of classes.txt
    ROOT/labels/{split}/{stem}.txt   the classes the image holds, one per line, in that order

Each object is a shape of the bank in its own flat colour (translucent as often as a single
shape is); a later object is drawn over the earlier ones and owns the pixels it covers. Objects
are placed by rejection sampling: a place is taken only if the new object is one 8-connected
piece and leaves every earlier object one piece with at most `max_overlap` of its area covered
(with 0, no two objects even touch). An object that finds no place in PLACEMENT_TRIES ends the
scene early, so an image may hold fewer objects than drawn, but always one.
"""

from __future__ import annotations

import zlib
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, fields, replace
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

from lit_gradcam.data import CLASSES
from lit_gradcam.data.backgrounds import HEIGHT, WIDTH, BackgroundSource
from lit_gradcam.data.classes import CLASSES_FILE
from lit_gradcam.data.shape_bank import (
    BANK,
    SIZE_RANGE,
    SQUARE_DIAMOND_DEGREES,
    paint,
    random_shape,
)
from lit_gradcam.errors import ConfigError

DEFAULT_OBJECTS = (1, 1)
DEFAULT_MAX_OVERLAP = 0.0
#: Places tried for one object before the scene is left with the objects it has.
PLACEMENT_TRIES = 30
#: The smallest object size accepted, in px: below it thin shapes fall apart into pixels.
MIN_OBJECT_SIZE = 8.0
#: The arguments `scene_spec` checks, as a message names them.
SCENE_ARGS = ("classes", "objects", "size_range", "max_overlap", "rotation")
_NEIGHBOURS = np.ones((3, 3), dtype=np.uint8)


def split_key(split: str) -> int:
    """A split's name as a number for seeding its images' generators."""
    return zlib.crc32(split.encode())


def balanced_index(seed: int, split: str, index: int, count: int) -> int:
    """Class index (of `count`) of image `index`: each block of `count` consecutive images is a
    permutation, so every split is balanced and a split's prefix does not depend on its size."""
    block_rng = np.random.default_rng([seed, split_key(split), 1, index // count])
    return int(block_rng.permutation(count)[index % count])


@dataclass(frozen=True)
class SceneSpec:
    """What each image holds: `classes` (None: the course's five, one per image, binary masks),
    `objects` (min, max) per image, their `size_range` in px, `max_overlap` and `rotation`
    (each object turned by a random angle of at most this many degrees)."""

    classes: tuple[str, ...] | None = None
    objects: tuple[int, int] = DEFAULT_OBJECTS
    size_range: tuple[float, float] = SIZE_RANGE
    max_overlap: float = DEFAULT_MAX_OVERLAP
    rotation: float = 0.0

    @property
    def semantic(self) -> bool:
        """Whether the dataset gets classes.txt and index masks (not the course's layout)."""
        return self.classes is not None or self.objects[1] > 1

    @property
    def names(self) -> tuple[str, ...]:
        """The class names in label-index order."""
        return CLASSES if self.classes is None else self.classes

    def recipe(self) -> dict:
        """The settings that differ from the defaults, as JSON values: a dataset of defaults
        keeps the recipe it always had."""
        return {
            field.name: list(value) if isinstance(value, tuple) else value
            for field in fields(self)
            if (value := getattr(self, field.name)) != field.default
        }


def _pair(value: object, kind: type, name: str, expected: str) -> tuple:
    """`value` as a (min, max) pair of `kind`; ConfigError naming `name` unless it is one."""
    numbers = (int, np.integer) if kind is int else (int, float, np.integer, np.floating)
    if (
        isinstance(value, str)
        or not isinstance(value, Sequence)
        or len(value) != 2
        or not all(isinstance(v, numbers) and not isinstance(v, bool) for v in value)
        or value[0] > value[1]
    ):
        raise ConfigError(f"{name} must be (min, max) with min <= max, {expected}; got {value!r}")
    return kind(value[0]), kind(value[1])


def scene_spec(
    classes: Sequence[str] | None,
    objects: Sequence[int],
    size_range: Sequence[float],
    max_overlap: float,
    rotation: float = 0.0,
    names: Sequence[str] = SCENE_ARGS,
) -> SceneSpec:
    """The checked SceneSpec; ConfigError naming the argument (as `names` call them) and what it
    accepts, the bank's shapes for an unknown one."""
    classes_name, objects_name, size_name, overlap_name, rotation_name = names
    bank = ", ".join(BANK)
    if classes is not None:
        if isinstance(classes, str) or not isinstance(classes, Sequence) or not classes:
            raise ConfigError(
                f"{classes_name} must be a list of one or more shape names (of: {bank}), got "
                f"{classes!r}"
            )
        unknown = [name for name in classes if name not in BANK]
        if unknown:
            raise ConfigError(f"{classes_name}: unknown shape(s) {unknown}; the bank has: {bank}")
        twice = sorted(name for name, count in Counter(classes).items() if count > 1)
        if twice:
            raise ConfigError(f"{classes_name} must name each shape once, got {twice} twice")
        classes = tuple(classes)
    low, high = _pair(objects, int, objects_name, "whole numbers of objects from 1")
    if low < 1:
        raise ConfigError(f"{objects_name} must be at least 1 object, got {tuple(objects)}")
    widest = min(HEIGHT, WIDTH)
    sizes = _pair(size_range, float, size_name, f"in px from {MIN_OBJECT_SIZE:g} to {widest}")
    if sizes[0] < MIN_OBJECT_SIZE or sizes[1] > widest:
        raise ConfigError(
            f"{size_name} must lie from {MIN_OBJECT_SIZE:g} to {widest} px (the image's "
            f"height), got {tuple(size_range)}"
        )
    if isinstance(max_overlap, bool) or not 0 <= max_overlap < 1:
        raise ConfigError(
            f"{overlap_name} must be >= 0 and < 1 (the share of an object's area later objects "
            f"may cover; each object keeps a visible part), got {max_overlap!r}"
        )
    spec = SceneSpec(classes, (low, high), sizes, float(max_overlap))
    turns_square = {"square", "diamond"} <= set(spec.names)
    largest = SQUARE_DIAMOND_DEGREES if turns_square else 180.0
    if (
        isinstance(rotation, bool)
        or not isinstance(rotation, int | float)
        or not (0 <= rotation <= largest)
    ):
        why = " (a square turned by 45 is a diamond, and both are classes)" if turns_square else ""
        raise ConfigError(
            f"{rotation_name} must be a number of degrees from 0 to {largest:g}{why}, "
            f"got {rotation!r}"
        )
    return replace(spec, rotation=float(rotation))


def _one_piece(mask: np.ndarray) -> bool:
    """Whether `mask` is one non-empty 8-connected piece."""
    return cv2.connectedComponents(mask.view(np.uint8), connectivity=8)[0] == 2


def _fits(mask: np.ndarray, owner: np.ndarray, areas: list[int], max_overlap: float) -> bool:
    """Whether a new object `mask`, drawn over the objects `owner` maps (-1: none), keeps the
    placement rules (see the module's docstring)."""
    if not _one_piece(mask):
        return False
    if max_overlap == 0:
        return not (owner[cv2.dilate(mask.view(np.uint8), _NEIGHBOURS).view(bool)] >= 0).any()
    after = np.where(mask, len(areas), owner)
    for earlier in np.unique(owner[mask & (owner >= 0)]):
        visible = after == earlier
        if areas[earlier] - visible.sum() > max_overlap * areas[earlier] or not _one_piece(visible):
            return False
    return True


def draw_scene(
    background: BackgroundSource, seed: int, split: str, index: int, spec: SceneSpec
) -> tuple[np.ndarray, np.ndarray, tuple[str, ...]]:
    """Image (H, W, 3) uint8, index mask (H, W) uint8 and the class names it holds (in label
    order) of image `index` of `split`; the first object's class is balanced over the split."""
    rng = np.random.default_rng([seed, split_key(split), 2, index])
    image = background.sample(rng)
    owner = np.full((HEIGHT, WIDTH), -1, dtype=np.int16)
    areas: list[int] = []
    kinds: list[int] = []
    first = balanced_index(seed, split, index, len(spec.names))
    for number in range(rng.integers(spec.objects[0], spec.objects[1] + 1)):
        kind = first if number == 0 else int(rng.integers(len(spec.names)))
        for attempt in range(PLACEMENT_TRIES):
            mask = random_shape(spec.names[kind], spec.size_range, rng, spec.rotation)
            # the first object stays even if no place suits it: every image holds one
            if _fits(mask, owner, areas, spec.max_overlap) or (
                number == 0 and attempt == PLACEMENT_TRIES - 1
            ):
                break
        else:
            break
        owner[mask] = number
        areas.append(int(mask.sum()))
        kinds.append(kind)
        image = paint(image, mask, rng)
    index_mask = np.where(owner >= 0, np.array(kinds)[owner] + 1, 0).astype(np.uint8)
    return image, index_mask, tuple(spec.names[k] for k in sorted(set(kinds)))


def write_scene(
    root: Path, split: str, stem: str, image: np.ndarray, mask: np.ndarray, labels: Sequence[str]
) -> None:
    """Write one scene's image, index mask (8-bit grey) and label file."""
    Image.fromarray(image).save(root / "images" / split / f"{stem}.png")
    Image.fromarray(mask).save(root / "masks" / split / f"{stem}.png")
    (root / "labels" / split / f"{stem}.txt").write_text("".join(f"{n}\n" for n in labels))


def write_classes(root: Path, names: Sequence[str]) -> None:
    """ROOT/classes.txt: `names`, one per line, in label-index order."""
    (root / CLASSES_FILE).write_text("".join(f"{name}\n" for name in names))
