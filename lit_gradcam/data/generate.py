"""Deterministic generator of the reference shapes dataset, written in its layout.

Each 48x64 RGB image holds one hard-edged shape (circle, square, triangle, star, diamond) about
13-19 px across, in one flat random colour, translucent a third of the time, over a blurry
natural background; the shape may touch or cross the border (its mask is clipped). Output:

    ROOT/images/{split}/{stem}.png   RGB
    ROOT/masks/{split}/{stem}.png    single channel, 0 / 255
    ROOT/labels/{split}/{stem}.txt   class name, e.g. "star"
    ROOT/dataset.json                the generator's arguments, written last

Given `classes` from the bank of shapes, or several `objects` per image, it writes scenes of
one or more objects instead, with ROOT/classes.txt, index masks and labels naming every class an
image holds (`lit_gradcam.data.multi_object`).

Every image draws from its own RNG keyed by (seed, split, index), so one seed gives
byte-identical files and resizing one split leaves the others untouched. The dataset is built
in a temporary folder beside ROOT and renamed into place only when complete.
"""

from __future__ import annotations

import argparse
import json
import shutil
import uuid
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from PIL import Image
from tqdm import tqdm

from lit_gradcam.data import CLASSES
from lit_gradcam.data.backgrounds import (
    BACKGROUNDS,
    BackgroundSource,
    BackgroundUnavailableError,
    make_background_source,
)
from lit_gradcam.data.multi_object import (
    DEFAULT_MAX_OVERLAP,
    DEFAULT_OBJECTS,
    SCENE_ARGS,
    SceneSpec,
    balanced_index,
    draw_scene,
    scene_spec,
    split_key,
    write_classes,
    write_scene,
)
from lit_gradcam.data.shape_bank import BANK, SIZE_RANGE, paint, random_shape
from lit_gradcam.errors import ConfigError

DEFAULT_SPLIT_SIZES = {"train": 3500, "val": 1000, "test": 500}
#: Written last into a generated dataset: its presence means "complete", its content says how.
MARKER = "dataset.json"
FORMAT_VERSION = 1


def class_of(seed: int, split: str, index: int) -> str:
    """Class of image `index`: each block of 5 consecutive images is a permutation of CLASSES,
    so every split is balanced and a split's prefix does not depend on its size."""
    return CLASSES[balanced_index(seed, split, index, len(CLASSES))]


def draw_sample(
    background: BackgroundSource,
    seed: int,
    split: str,
    index: int,
    size_range: tuple[float, float] = SIZE_RANGE,
    rotation: float = 0.0,
) -> tuple[np.ndarray, np.ndarray, str]:
    """Image (H, W, 3) uint8, mask (H, W) bool and class name of image `index` of `split`,
    its shape `size_range` px across (the dataset's own range by default), turned by at most
    `rotation` degrees."""
    label = class_of(seed, split, index)
    rng = np.random.default_rng([seed, split_key(split), 0, index])
    image = background.sample(rng)
    mask = random_shape(label, size_range, rng, rotation)
    return paint(image, mask, rng), mask, label


def write_sample(
    root: Path, split: str, stem: str, image: np.ndarray, mask: np.ndarray, label: str
) -> None:
    """Write one sample's image, 0/255 mask and label file in the shapes layout."""
    Image.fromarray(image).save(root / "images" / split / f"{stem}.png")
    Image.fromarray(mask.astype(np.uint8) * 255).save(root / "masks" / split / f"{stem}.png")
    (root / "labels" / split / f"{stem}.txt").write_text(label + "\n")


def _recipe(split_sizes: dict[str, int], seed: int, background: str, spec: SceneSpec) -> dict:
    return {
        "format_version": FORMAT_VERSION,
        "seed": seed,
        "split_sizes": split_sizes,
        "background": background,
        **spec.recipe(),
    }


class DatasetExistsError(FileExistsError):
    """`root` holds something other than the dataset asked for, which is never overwritten."""


def _check_existing(root: Path, recipe: dict) -> None:
    """Accept an existing `root` only if this generator made it with the same arguments."""
    marker = root / MARKER
    if not marker.is_file():
        raise DatasetExistsError(
            f"{root} exists but is not a complete generated dataset (no {MARKER}); refusing to "
            "overwrite it. Delete it, pick another root, or read it with ShapesFolder."
        )
    found = json.loads(marker.read_text())
    if found != recipe:
        raise DatasetExistsError(
            f"{root} holds a dataset generated with {found}, not the requested {recipe}. "
            "Delete it or pick another root to generate a new one."
        )


def generate_dataset(
    root: str | Path,
    split_sizes: dict[str, int] | None = None,
    seed: int = 0,
    background: str = "natural",
    progress: bool = True,
    *,
    classes: Sequence[str] | None = None,
    objects: tuple[int, int] = DEFAULT_OBJECTS,
    size_range: tuple[float, float] = SIZE_RANGE,
    max_overlap: float = DEFAULT_MAX_OVERLAP,
    rotation: float = 0.0,
) -> Path:
    """Generate the shapes dataset at `root` (atomically) and return its path.

    If `root` already holds a dataset generated with the same arguments, nothing is done.
    CIFAR-10 backgrounds are read from (or downloaded to) `root`'s sibling folder `cifar10/`.
    `classes` (shapes of the bank, in label-index order) or `objects` (min, max) above one make
    a dataset of scenes with classes.txt and index masks; None and (1, 1), the course's layout.
    `size_range` is each object's size in px, `max_overlap` the largest share of an object's
    area later objects may cover (0: objects never touch), `rotation` the largest angle in
    degrees each object is turned by (0: upright).
    """
    root = Path(root)
    split_sizes = dict(DEFAULT_SPLIT_SIZES if split_sizes is None else split_sizes)
    if seed < 0 or any(n < 0 for n in split_sizes.values()):
        raise ConfigError(f"seed and split sizes must be >= 0, got {seed} and {split_sizes}")
    if background not in BACKGROUNDS:
        raise ConfigError(f"unknown background {background!r}; choose one of {BACKGROUNDS}")
    spec = scene_spec(classes, objects, size_range, max_overlap, rotation)
    recipe = _recipe(split_sizes, seed, background, spec)
    if root.exists() and not root.is_dir():
        raise ConfigError(f"{root} is a file; expected a folder to generate the dataset in")
    if root.exists() and any(root.iterdir()):
        _check_existing(root, recipe)
        return root

    root.parent.mkdir(parents=True, exist_ok=True)
    source = make_background_source(background, root.parent / "cifar10")
    tmp = root.parent / f".{root.name}.partial-{uuid.uuid4().hex}"
    tmp.mkdir()  # unlike mkdtemp, keeps the umask's permissions for the final folder
    try:
        _fill(tmp, split_sizes, seed, source, progress, spec)
        if spec.semantic:
            write_classes(tmp, spec.names)
        (tmp / MARKER).write_text(json.dumps(recipe, indent=2) + "\n")
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    try:
        if root.exists():
            root.rmdir()  # empty (checked above): rename() cannot replace it on every OS
        tmp.rename(root)
    except OSError:
        shutil.rmtree(tmp, ignore_errors=True)
        if (root / MARKER).is_file():  # another process finished the same dataset first
            _check_existing(root, recipe)
            return root
        raise
    return root


def _fill(
    tmp: Path,
    split_sizes: dict[str, int],
    seed: int,
    source: BackgroundSource,
    progress: bool,
    spec: SceneSpec,
) -> None:
    """Write every sample of every split into `tmp`."""
    for split in split_sizes:
        for kind in ("images", "masks", "labels"):
            (tmp / kind / split).mkdir(parents=True)
    total = sum(split_sizes.values())
    with tqdm(total=total, desc="Generating shapes", disable=not progress) as bar:
        for split, count in split_sizes.items():
            digits = max(5, len(str(count - 1)))
            for index in range(count):
                stem = f"{index:0{digits}d}"
                if spec.semantic:
                    write_scene(tmp, split, stem, *draw_scene(source, seed, split, index, spec))
                else:
                    image, mask, label = draw_sample(
                        source, seed, split, index, spec.size_range, spec.rotation
                    )
                    write_sample(tmp, split, stem, image, mask, label)
                bar.update()


def main(argv: Sequence[str] | None = None) -> Path:
    """`python -m lit_gradcam.data.generate --root data/shapes --seed 0 ...`"""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--root", default="data/shapes", help="output folder")
    parser.add_argument("--seed", type=int, default=0)
    for split, count in DEFAULT_SPLIT_SIZES.items():
        parser.add_argument(f"--{split}", type=int, default=count, help=f"{split} images")
    parser.add_argument("--background", choices=BACKGROUNDS, default="natural")
    parser.add_argument(
        "--classes",
        type=lambda text: [name.strip() for name in text.split(",")],
        help=f"comma-separated shapes, in label-index order: scenes with classes.txt and index "
        f"masks (of: {', '.join(BANK)})",
    )
    parser.add_argument(
        "--objects",
        type=int,
        nargs=2,
        default=DEFAULT_OBJECTS,
        metavar=("MIN", "MAX"),
        help="objects per image (a maximum above 1: scenes as for --classes)",
    )
    parser.add_argument(
        "--size-range",
        type=float,
        nargs=2,
        default=SIZE_RANGE,
        metavar=("MIN", "MAX"),
        help="object size in px",
    )
    parser.add_argument(
        "--max-overlap",
        type=float,
        default=DEFAULT_MAX_OVERLAP,
        help="largest share of an object's area later objects may cover (0: never touching)",
    )
    parser.add_argument(
        "--rotation",
        type=float,
        default=0.0,
        help="largest angle in degrees each object is turned by, at random (0: upright)",
    )
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    args = parser.parse_args(argv)
    sizes = {split: getattr(args, split) for split in DEFAULT_SPLIT_SIZES}
    scene = {name: getattr(args, name) for name in SCENE_ARGS}
    try:
        root = generate_dataset(
            args.root, sizes, args.seed, args.background, not args.no_progress, **scene
        )
    except (ConfigError, BackgroundUnavailableError, DatasetExistsError) as error:
        parser.error(str(error))
    except OSError as error:  # a folder the file system will not create or write
        parser.error(f"cannot write the dataset to {args.root}: {error}")
    print(root)
    return root


if __name__ == "__main__":
    main()
