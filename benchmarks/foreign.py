"""A second shapes generator, independent of `lit_gradcam.data.generate`, kept only to measure
generalisation, so it lives with the benchmarks and not in the installed package.

Nothing here may be used to train or tune: it exists so that a model (or a segmenter) tuned on
`generate`'s data can be scored on shapes it has never seen the like of. So it differs from
`generate` wherever a model could have latched on to something:

- renderer: each shape is drawn with PIL on a supersampled canvas and box-filtered down, so its
  edge pixels are anti-aliased; the image is composited with that coverage (times alpha) and the
  mask is coverage >= 0.5;
- backgrounds: none of `lit_gradcam.data.backgrounds.NATURAL_PHOTOS`; other images bundled with
  scikit-image (grey ones tinted with two random colours) and procedural ones (value noise,
  gradients, soft blobs), all passed through 32x32 and scaled up bicubically;
- shapes: other sizes, always wholly inside the frame, tall diamonds, triangles and stars turned
  a little, other star proportions and opacities;
- files: `img_NNNNNN` stems, 0/1 masks, capitalised labels ("Circle"), and `foreign.json`.

The output reads with `ShapesFolder`. Every image draws from its own RNG keyed by
(seed, split, index), so one seed gives byte-identical files. The dataset is built in a temporary
folder beside ROOT and renamed into place when complete; an existing non-empty ROOT is refused.

    python benchmarks/foreign.py --root data/foreign --seed 0 --train 3500 --val 1000 --test 500

The other benchmarks import it as their sibling (`from foreign import ...`).
"""

from __future__ import annotations

import argparse
import json
import shutil
import uuid
import zlib
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw
from tqdm import tqdm

from lit_gradcam.data import CLASSES

HEIGHT, WIDTH = 48, 64
DEFAULT_SPLIT_SIZES = {"train": 3500, "val": 1000, "test": 500}
#: Written last: the generator's arguments.
RECIPE = "foreign.json"
#: Images bundled in skimage/data that `backgrounds.NATURAL_PHOTOS` does not use.
GREY_PHOTOS = ("brick.png", "grass.png", "gravel.png", "camera.png", "coins.png", "moon.png")
COLOUR_PHOTOS = ("hubble_deep_field.jpg", "ihc.png", "retina.jpg")
#: Chance of each background kind: photo, noise, gradient, blobs.
KIND_WEIGHTS = (0.5, 0.2, 0.15, 0.15)
SMALL_SIDE = 32
SUPERSAMPLE = 8
SIZE_RANGE = (12.0, 20.0)
MAX_TURN_DEGREES = 12.0
STAR_INNER_RATIO = (0.44, 0.56)
DIAMOND_ASPECT = (1.0, 1.25)
TRANSLUCENT_FRACTION = 1 / 3
ALPHA_RANGE = (0.5, 0.85)
#: Shape sizes of the two-object scenes (`draw_two_objects`), smaller so that two fit apart.
TWO_OBJECT_SIZE_RANGE = (10.0, 16.0)
#: Least gap (pixels) between the two shapes' outer circles.
TWO_OBJECT_GAP = 2.0


def _photo_dir() -> Path:
    import skimage

    return Path(skimage.__file__).parent / "data"


class PhotoBackgrounds:
    """Crops of scikit-image's bundled grey and colour images (none that `generate` uses).

    A grey crop is mapped onto a line between two random colours; a colour crop gets a random
    gain per channel. `paths` lists every file read.
    """

    def __init__(self, photo_dir: Path | None = None) -> None:
        photo_dir = _photo_dir() if photo_dir is None else photo_dir
        self.paths = [photo_dir / name for name in GREY_PHOTOS + COLOUR_PHOTOS]
        self.photos = []
        for path in self.paths:
            with Image.open(path) as photo:
                self.photos.append(photo.convert("L" if path.name in GREY_PHOTOS else "RGB"))

    def sample(self, rng: np.random.Generator) -> np.ndarray:
        """A (32, 32, 3) float crop in [0, 255]."""
        photo = self.photos[rng.integers(len(self.photos))]
        side = min(photo.size) * np.sqrt(rng.uniform(0.03, 0.4))
        x0, y0 = rng.uniform(0, photo.width - side), rng.uniform(0, photo.height - side)
        crop = photo.resize(
            (SMALL_SIDE, SMALL_SIDE), Image.Resampling.LANCZOS, box=(x0, y0, x0 + side, y0 + side)
        )
        values = np.asarray(crop, dtype=np.float64)
        if photo.mode == "L":
            low, high = rng.uniform(0, 255, (2, 3))
            return low + (values[..., None] / 255) * (high - low)
        return values * rng.uniform(0.7, 1.2, 3)


def _resize_channels(grid: np.ndarray, height: int, width: int) -> np.ndarray:
    """Bicubic resize of a float (h, w, C) array to (height, width, C)."""
    return np.stack(
        [
            np.asarray(
                Image.fromarray(grid[..., c].astype(np.float32), "F").resize(
                    (width, height), Image.Resampling.BICUBIC
                )
            )
            for c in range(grid.shape[-1])
        ],
        axis=-1,
    )


def value_noise(rng: np.random.Generator) -> np.ndarray:
    """Colour multi-octave value noise: random grids of doubling resolution, halving weight."""
    total = np.zeros((SMALL_SIDE, SMALL_SIDE, 3))
    for octave in range(4):
        cells = 2 ** (octave + 1) + 1
        grid = rng.uniform(0, 1, (cells, cells, 3))
        total += _resize_channels(grid, SMALL_SIDE, SMALL_SIDE) * 0.5**octave
    total = (total - total.min()) / max(np.ptp(total), 1e-6)
    low, high = rng.uniform(0, 255, (2, 3))
    return low + total * (high - low)


def gradient(rng: np.random.Generator) -> np.ndarray:
    """A linear ramp between two random colours along a random direction."""
    angle = rng.uniform(0, 2 * np.pi)
    ys, xs = np.mgrid[0:SMALL_SIDE, 0:SMALL_SIDE] / (SMALL_SIDE - 1) - 0.5
    t = np.clip(xs * np.cos(angle) + ys * np.sin(angle) + 0.5, 0, 1)[..., None]
    start, end = rng.uniform(0, 255, (2, 3))
    return start + t * (end - start)


def soft_blobs(rng: np.random.Generator) -> np.ndarray:
    """A flat colour under a few Gaussian blobs of other colours."""
    image = np.broadcast_to(rng.uniform(0, 255, 3), (SMALL_SIDE, SMALL_SIDE, 3)).copy()
    ys, xs = np.mgrid[0:SMALL_SIDE, 0:SMALL_SIDE]
    for _ in range(rng.integers(2, 6)):
        cx, cy = rng.uniform(0, SMALL_SIDE, 2)
        sigma = rng.uniform(3, 10)
        weight = np.exp(-((xs - cx) ** 2 + (ys - cy) ** 2) / (2 * sigma**2))[..., None]
        image = image * (1 - weight) + rng.uniform(0, 255, 3) * weight
    return image


class ForeignBackgrounds:
    """Photo crops or procedural images, drawn at 32x32 and scaled up bicubically to 48x64."""

    def __init__(self, photos: PhotoBackgrounds | None = None) -> None:
        self.photos = PhotoBackgrounds() if photos is None else photos
        self.kinds: dict[str, Callable[[np.random.Generator], np.ndarray]] = {
            "photo": self.photos.sample,
            "noise": value_noise,
            "gradient": gradient,
            "blobs": soft_blobs,
        }

    def sample(self, rng: np.random.Generator) -> tuple[np.ndarray, str]:
        """A (48, 64, 3) uint8 background and the name of its kind."""
        kind = list(self.kinds)[rng.choice(len(self.kinds), p=KIND_WEIGHTS)]
        small = np.clip(np.rint(self.kinds[kind](rng)), 0, 255).astype(np.uint8)
        image = Image.fromarray(small).resize((WIDTH, HEIGHT), Image.Resampling.BICUBIC)
        return np.asarray(image), kind


def _turn(points: np.ndarray, degrees: float) -> np.ndarray:
    angle = np.deg2rad(degrees)
    rotation = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    return points @ rotation.T


def outline(name: str, size: float, rng: np.random.Generator) -> np.ndarray | None:
    """Polygon vertices (N, 2) around the origin, x right and y down; None for the circle."""
    half = size / 2
    if name == "circle":
        return None
    if name == "square":
        return np.array([[-half, -half], [half, -half], [half, half], [-half, half]])
    if name == "diamond":
        tall = half * rng.uniform(*DIAMOND_ASPECT)
        return np.array([[0, -tall], [half, 0], [0, tall], [-half, 0]])
    turn = rng.uniform(-MAX_TURN_DEGREES, MAX_TURN_DEGREES)
    if name == "triangle":
        half_height = half * rng.uniform(0.75, 0.95)
        apex_up = np.array([[0, -half_height], [half, half_height], [-half, half_height]])
        return _turn(apex_up, turn)
    if name == "star":
        radii = np.tile([half, half * rng.uniform(*STAR_INNER_RATIO)], 5)
        angles = -np.pi / 2 + np.arange(10) * np.pi / 5
        return _turn(np.stack([radii * np.cos(angles), radii * np.sin(angles)], 1), turn)
    raise ValueError(f"unknown shape {name!r}; choose one of {CLASSES}")


def coverage(vertices: np.ndarray | None, size: float, cx: float, cy: float) -> np.ndarray:
    """(H, W) share of each pixel covered by the shape centred at (cx, cy), pixel (i, j) being
    the square [j, j + 1) x [i, i + 1): drawn SUPERSAMPLE times larger, then averaged."""
    canvas = Image.new("L", (WIDTH * SUPERSAMPLE, HEIGHT * SUPERSAMPLE), 0)
    draw = ImageDraw.Draw(canvas)
    if vertices is None:  # PIL's box includes its last row and column of pixels
        r = size / 2
        box = np.array([cx - r, cy - r, cx + r, cy + r]) * SUPERSAMPLE - [0, 0, 1, 1]
        draw.ellipse(box.tolist(), fill=255)
    else:  # PIL also fills the boundary's pixels: a polygon grows by up to one sub-pixel
        points = (vertices + [cx, cy]) * SUPERSAMPLE
        draw.polygon([tuple(p) for p in points.tolist()], fill=255)
    ink = np.asarray(canvas, dtype=np.float64) / 255
    return ink.reshape(HEIGHT, SUPERSAMPLE, WIDTH, SUPERSAMPLE).mean(axis=(1, 3))


def _split_key(split: str) -> int:
    return zlib.crc32(f"foreign/{split}".encode())


def split_labels(seed: int, split: str, count: int) -> list[str]:
    """Class of every image of a split: each class `count // 5` or one more times, shuffled."""
    rng = np.random.default_rng([seed, _split_key(split), 1])
    return [CLASSES[i] for i in rng.permutation(np.resize(np.arange(len(CLASSES)), count))]


def draw_sample(
    backgrounds: ForeignBackgrounds, seed: int, split: str, index: int, label: str
) -> tuple[np.ndarray, np.ndarray, dict]:
    """Image (H, W, 3) uint8, mask (H, W) bool and a description of image `index` of `split`."""
    rng = np.random.default_rng([seed, _split_key(split), 0, index])
    background, kind = backgrounds.sample(rng)
    size = rng.uniform(*SIZE_RANGE)
    vertices = outline(label, size, rng)
    reach = size / 2 if vertices is None else float(np.hypot(*vertices.T).max())
    cx, cy = rng.uniform(reach + 1, WIDTH - reach - 1), rng.uniform(reach + 1, HEIGHT - reach - 1)
    cover = coverage(vertices, size, cx, cy)
    colour = rng.integers(0, 256, 3)
    alpha = rng.uniform(*ALPHA_RANGE) if rng.random() < TRANSLUCENT_FRACTION else 1.0
    weight = (alpha * cover)[..., None]
    image = np.clip(np.rint(background * (1 - weight) + colour * weight), 0, 255).astype(np.uint8)
    info = {"background": kind, "size": size, "alpha": alpha}
    return image, cover >= 0.5, info


def draw_background_only(
    backgrounds: ForeignBackgrounds, seed: int, split: str, index: int
) -> np.ndarray:
    """Image (H, W, 3) uint8 `index` of `split` holding no shape: a background as `draw_sample`
    draws them, for measuring the no-shape flag."""
    rng = np.random.default_rng([seed, _split_key(split), 3, index])
    image, _ = backgrounds.sample(rng)
    return image


def _place_apart(
    reaches: list[float], rng: np.random.Generator, tries: int = 1000
) -> list[tuple[float, float]]:
    """Centres for shapes of outer radii `reaches`, wholly inside the frame and at least
    TWO_OBJECT_GAP apart."""
    for _ in range(tries):
        centres = [
            (rng.uniform(r + 1, WIDTH - r - 1), rng.uniform(r + 1, HEIGHT - r - 1)) for r in reaches
        ]
        (x0, y0), (x1, y1) = centres
        if np.hypot(x1 - x0, y1 - y0) >= reaches[0] + reaches[1] + TWO_OBJECT_GAP:
            return centres
    raise RuntimeError(f"could not place shapes of radii {reaches} apart in {tries} tries")


def draw_two_objects(
    backgrounds: ForeignBackgrounds, seed: int, split: str, index: int
) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Image (H, W, 3) uint8, masks (2, H, W) bool and classes of two shapes that do not touch:
    scene `index` of `split` for the prompt-following benchmark, drawn as `draw_sample` draws."""
    rng = np.random.default_rng([seed, _split_key(split), 2, index])
    image, _ = backgrounds.sample(rng)
    labels = [CLASSES[i] for i in rng.integers(len(CLASSES), size=2)]
    sizes = rng.uniform(*TWO_OBJECT_SIZE_RANGE, size=2)
    outlines = [outline(label, size, rng) for label, size in zip(labels, sizes, strict=True)]
    reaches = [
        size / 2 if vertices is None else float(np.hypot(*vertices.T).max())
        for vertices, size in zip(outlines, sizes, strict=True)
    ]
    masks = []
    result = image.astype(np.float64)
    for vertices, size, (cx, cy) in zip(outlines, sizes, _place_apart(reaches, rng), strict=True):
        cover = coverage(vertices, size, cx, cy)
        alpha = rng.uniform(*ALPHA_RANGE) if rng.random() < TRANSLUCENT_FRACTION else 1.0
        weight = (alpha * cover)[..., None]
        result = result * (1 - weight) + rng.integers(0, 256, 3) * weight
        masks.append(cover >= 0.5)
    return np.clip(np.rint(result), 0, 255).astype(np.uint8), np.stack(masks), labels


def write_sample(
    root: Path, split: str, stem: str, image: np.ndarray, mask: np.ndarray, label: str
) -> None:
    """Write one sample: RGB image, 0/1 single-channel mask, capitalised label."""
    Image.fromarray(image).save(root / "images" / split / f"{stem}.png")
    Image.fromarray(mask.astype(np.uint8)).save(root / "masks" / split / f"{stem}.png")
    (root / "labels" / split / f"{stem}.txt").write_text(label.capitalize() + "\n")


@contextmanager
def atomic_build(root: Path, split_sizes: dict[str, int], seed: int) -> Iterator[Path]:
    """A temporary folder beside `root` to build a dataset in, renamed to `root` when the block
    ends and removed if it fails; refuses bad sizes or seed and an existing non-empty `root`."""
    if seed < 0 or any(n < 0 for n in split_sizes.values()):
        raise ValueError(f"seed and split sizes must be >= 0, got {seed} and {split_sizes}")
    if root.exists() and (not root.is_dir() or any(root.iterdir())):
        raise FileExistsError(
            f"{root} already exists and is not empty; refusing to overwrite it. Delete it or "
            "pick another --root."
        )
    root.parent.mkdir(parents=True, exist_ok=True)
    tmp = root.parent / f".{root.name}.partial-{uuid.uuid4().hex}"
    tmp.mkdir()
    try:
        yield tmp
        if root.exists():
            root.rmdir()  # empty (checked above): rename() cannot replace it on every OS
        tmp.rename(root)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def generate_foreign(
    root: str | Path,
    split_sizes: dict[str, int] | None = None,
    seed: int = 0,
    progress: bool = True,
) -> Path:
    """Generate the foreign dataset at `root` (atomically); splits of size 0 are left out."""
    root = Path(root)
    split_sizes = dict(DEFAULT_SPLIT_SIZES if split_sizes is None else split_sizes)
    with atomic_build(root, split_sizes, seed) as tmp:
        sizes = {s: n for s, n in split_sizes.items() if n}
        _fill(tmp, sizes, seed, ForeignBackgrounds(), progress)
        recipe = {"generator": __name__, "seed": seed, "split_sizes": split_sizes}
        (tmp / RECIPE).write_text(json.dumps(recipe, indent=2) + "\n")
    return root


def _fill(
    tmp: Path,
    split_sizes: dict[str, int],
    seed: int,
    backgrounds: ForeignBackgrounds,
    progress: bool,
) -> None:
    for split in split_sizes:
        for kind in ("images", "masks", "labels"):
            (tmp / kind / split).mkdir(parents=True)
    with tqdm(
        total=sum(split_sizes.values()), desc="Generating foreign shapes", disable=not progress
    ) as bar:
        for split, count in split_sizes.items():
            for index, label in enumerate(split_labels(seed, split, count)):
                image, mask, _ = draw_sample(backgrounds, seed, split, index, label)
                write_sample(tmp, split, f"img_{index:06d}", image, mask, label)
                bar.update()


def main(argv: Sequence[str] | None = None) -> Path:
    """`python benchmarks/foreign.py --root data/foreign --seed 0 ...`"""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--root", default="data/foreign", help="output folder (must not exist)")
    parser.add_argument("--seed", type=int, default=0)
    for split, count in DEFAULT_SPLIT_SIZES.items():
        parser.add_argument(f"--{split}", type=int, default=count, help=f"{split} images")
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    args = parser.parse_args(argv)
    sizes = {split: getattr(args, split) for split in DEFAULT_SPLIT_SIZES}
    root = generate_foreign(args.root, sizes, args.seed, not args.no_progress)
    print(root)
    return root


if __name__ == "__main__":
    main()
