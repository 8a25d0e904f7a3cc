"""A multi-object scenes generator with classes of its own, kept only to measure, so it lives
with the benchmarks and not in the installed package.

Nothing here may be used to train or tune, least of all its test split: it exists so that the
method can be scored on a folder in the `classes.txt` layout (several objects and classes per
image, VOC-style index masks) that no model or default of this repository was shaped on. It
shares nothing with `lit_gradcam.data.generate` but the folder layout:

- classes: none of the course's five; its own bank (`SHAPES`: hexagon, pentagon, cross, arrow,
  crescent, heart, ring), all of them by default;
- scenes: 1 to 3 objects (`objects`), each of a class drawn at random, each turned at random,
  wholly inside the frame; two objects share at most `max_overlap` of the smaller one's area,
  a later object is drawn over an earlier one, and every object keeps at least `MIN_VISIBLE` of
  the pixels it covers at least half of; at `max_overlap` 0 no two objects touch, not even
  diagonally;
- renderer: `foreign.py`'s (PIL on a supersampled canvas, box-filtered down, so edges are
  anti-aliased; each object composited with its coverage times its alpha) and its backgrounds
  and colour and opacity rules;
- masks: palette PNGs (mode P, VOC's colours; the index is the class): 0 background, i the i-th
  class of `classes.txt`, 255 ignored. With `void_rim` (the default) a pixel is an object's
  class where it covers at least 3/4 of it and 255 where it covers strictly between 1/4 and
  3/4, as VOC marks its uncertain boundary void; without, the class is where it covers at
  least half. Where a later object's value is set, it replaces an earlier one's;
- files: `img_NNNNNN` stems, capitalised labels and classes ("Hexagon"), each label listing
  exactly the classes its mask holds, and `foreign_scenes.json` with the arguments.

Every image draws from its own RNG keyed by (seed, split, index), so one seed and one set of
arguments give byte-identical files. The folder is built in a temporary folder beside ROOT and
renamed into place when complete; an existing non-empty ROOT is refused.

    python benchmarks/foreign_scenes.py --root data/foreign_scenes3500 --seed 0 \\
        --train 3500 --val 1000 --test 500 [--objects 1 3] [--classes hexagon cross ...]
"""

from __future__ import annotations

import argparse
import json
import zlib
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
from foreign import (
    ALPHA_RANGE,
    DEFAULT_SPLIT_SIZES,
    HEIGHT,
    KIND_WEIGHTS,
    SUPERSAMPLE,
    TRANSLUCENT_FRACTION,
    WIDTH,
    ForeignBackgrounds,
    atomic_build,
)
from PIL import Image, ImageDraw
from tqdm import tqdm

#: Written last: the generator's arguments.
RECIPE = "foreign_scenes.json"
CLASSES_FILE = "classes.txt"
#: Mask value of ignored pixels.
VOID = 255
#: Coverage bounds (exclusive) of the void rim.
RIM = (0.25, 0.75)
#: Diameter range of an object's outer circle in a 48x64 frame; scaled with the frame.
SIZE_RANGE = (11.0, 18.0)
#: Least share of an object's pixels (coverage >= 1/2) that later objects may leave uncovered.
MIN_VISIBLE = 0.6
#: Least gap (pixels) between two outer circles at max_overlap 0: more than a pixel diagonal,
#: so no pixel of one object touches a pixel of another.
APART_GAP = 3.5
#: Vertices of the polygons standing for circles.
CIRCLE_VERTICES = 48
#: Tries to place one object before the scene starts afresh, and fresh starts before giving up.
PLACE_TRIES = 100
SCENE_TRIES = 100

#: A shape: polygons (vertices (N, 2), x right, y down) drawn in turn, True filling and False
#: cutting a hole.
Parts = list[tuple[np.ndarray, bool]]


def _regular(corners: int, radius: float = 1.0, offset: float = 0.0) -> np.ndarray:
    """A regular polygon of `corners` around (offset, 0), its first corner straight up."""
    angles = -np.pi / 2 + np.arange(corners) * 2 * np.pi / corners
    return np.stack([offset + radius * np.cos(angles), radius * np.sin(angles)], 1)


def _hexagon(rng: np.random.Generator) -> Parts:
    return [(_regular(6), True)]


def _pentagon(rng: np.random.Generator) -> Parts:
    return [(_regular(5), True)]


def _cross(rng: np.random.Generator) -> Parts:
    """A plus sign with arms of random width."""
    w = rng.uniform(0.22, 0.34)
    quarter = [[w, -1], [w, -w], [1, -w]]
    turns = [np.array([[c, -s], [s, c]]) for c, s in ((1, 0), (0, 1), (-1, 0), (0, -1))]
    return [(np.concatenate([np.array(quarter) @ turn.T for turn in turns]), True)]


def _arrow(rng: np.random.Generator) -> Parts:
    """A shaft and a head pointing right, of random proportions."""
    shaft, head, neck = rng.uniform(0.2, 0.28), rng.uniform(0.5, 0.65), rng.uniform(0.0, 0.3)
    points = [
        [-1, -shaft],
        [neck, -shaft],
        [neck, -head],
        [1, 0],
        [neck, head],
        [neck, shaft],
        [-1, shaft],
    ]
    return [(np.array(points, dtype=np.float64), True)]


def _crescent(rng: np.random.Generator) -> Parts:
    """A disc less an offset disc, of random thickness."""
    cut = _regular(CIRCLE_VERTICES, rng.uniform(0.75, 0.9), rng.uniform(0.45, 0.6))
    return [(_regular(CIRCLE_VERTICES), True), (cut, False)]


def _heart(rng: np.random.Generator) -> Parts:
    """The classic parametric heart curve."""
    t = np.linspace(0, 2 * np.pi, 4 * CIRCLE_VERTICES, endpoint=False)
    x = 16 * np.sin(t) ** 3
    y = -(13 * np.cos(t) - 5 * np.cos(2 * t) - 2 * np.cos(3 * t) - np.cos(4 * t))
    return [(np.stack([x, y], 1), True)]


def _ring(rng: np.random.Generator) -> Parts:
    """A disc less a concentric disc of random radius."""
    return [
        (_regular(CIRCLE_VERTICES), True),
        (_regular(CIRCLE_VERTICES, rng.uniform(0.45, 0.6)), False),
    ]


#: The bank of classes, in their default label order.
SHAPES: dict[str, Callable[[np.random.Generator], Parts]] = {
    "hexagon": _hexagon,
    "pentagon": _pentagon,
    "cross": _cross,
    "arrow": _arrow,
    "crescent": _crescent,
    "heart": _heart,
    "ring": _ring,
}


def outline(name: str, rng: np.random.Generator) -> Parts:
    """Shape `name` around the origin, turned at random, its filled parts reaching radius 1 (so
    that an object of diameter d lies inside the circle of radius d/2 around its centre)."""
    if name not in SHAPES:
        raise ValueError(f"unknown shape {name!r}; choose from {list(SHAPES)}")
    parts = SHAPES[name](rng)
    filled = np.concatenate([vertices for vertices, fill in parts if fill])
    centre = (filled.min(0) + filled.max(0)) / 2
    reach = np.hypot(*(filled - centre).T).max()
    angle = rng.uniform(0, 2 * np.pi)
    turn = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    return [((vertices - centre) / reach @ turn.T, fill) for vertices, fill in parts]


def coverage(
    parts: Parts, size: float, cx: float, cy: float, height: int, width: int
) -> np.ndarray:
    """(height, width) share of each pixel covered by the shape of diameter `size` centred at
    (cx, cy), pixel (i, j) being the square [j, j + 1) x [i, i + 1): drawn SUPERSAMPLE times
    larger on a canvas around the shape only, then averaged."""
    r = size / 2
    x0, y0 = max(int(np.floor(cx - r)) - 1, 0), max(int(np.floor(cy - r)) - 1, 0)
    x1, y1 = min(int(np.ceil(cx + r)) + 1, width), min(int(np.ceil(cy + r)) + 1, height)
    canvas = Image.new("L", ((x1 - x0) * SUPERSAMPLE, (y1 - y0) * SUPERSAMPLE), 0)
    draw = ImageDraw.Draw(canvas)
    for vertices, fill in parts:
        # PIL's pixel k is centred on coordinate k, the sub-pixel [k, k + 1) on k + 0.5
        points = (vertices * r + [cx - x0, cy - y0]) * SUPERSAMPLE - 0.5
        draw.polygon([tuple(p) for p in points.tolist()], fill=255 if fill else 0)
    ink = np.asarray(canvas, dtype=np.float64) / 255
    cover = np.zeros((height, width))
    cover[y0:y1, x0:x1] = ink.reshape(y1 - y0, SUPERSAMPLE, x1 - x0, SUPERSAMPLE).mean(axis=(1, 3))
    return cover


def voc_palette() -> list[int]:
    """PASCAL VOC's 256 colours, flat (r, g, b, r, g, b, ...): index i's bits, three at a time,
    spread over the channels' high bits (1 is dark red, 255 is the void's cream)."""
    index = np.arange(256)
    colours = np.zeros((256, 3), dtype=np.int64)
    for shift in range(8):
        for channel in range(3):
            bit = (index >> (3 * shift + channel)) & 1
            colours[:, channel] |= bit << (7 - shift)
    return colours.ravel().tolist()


PALETTE = voc_palette()


@dataclass(frozen=True)
class SceneConfig:
    """What a scene holds and how its mask is written (see the module's docstring)."""

    classes: tuple[str, ...] = tuple(SHAPES)
    objects: tuple[int, int] = (1, 3)
    max_overlap: float = 0.15
    void_rim: bool = True
    height: int = HEIGHT
    width: int = WIDTH

    def __post_init__(self) -> None:
        unknown = [name for name in self.classes if name not in SHAPES]
        if not self.classes or unknown or len(set(self.classes)) < len(self.classes):
            raise ValueError(
                f"classes must be distinct names from {list(SHAPES)}, got {list(self.classes)}"
            )
        low, high = self.objects
        if not 1 <= low <= high:
            raise ValueError(f"objects must be MIN MAX with 1 <= MIN <= MAX, got {self.objects}")
        if not 0 <= self.max_overlap < 1:
            raise ValueError(f"max_overlap must be in [0, 1), got {self.max_overlap}")
        if self.scale < 0.5:  # the smallest object would be under 5 pixels across
            raise ValueError(
                f"the frame must be at least {HEIGHT // 2}x{WIDTH // 2}, "
                f"got {self.height}x{self.width}"
            )

    @property
    def scale(self) -> float:
        """Object sizes relative to a 48x64 frame's."""
        return min(self.height / HEIGHT, self.width / WIDTH)


@dataclass
class SceneObject:
    """One drawn object: its class, diameter, centre (x, y), coverage (H, W), colour, alpha."""

    label: str
    size: float
    centre: tuple[float, float]
    cover: np.ndarray = field(repr=False)
    colour: np.ndarray | None = None
    alpha: float = 1.0

    @property
    def solid(self) -> np.ndarray:
        """Pixels it covers at least half of."""
        return self.cover >= 0.5


@dataclass
class Scene:
    """Image (H, W, 3) uint8, index mask (H, W) uint8, the classes the mask holds (in label
    order), the objects bottom to top and the background's kind."""

    image: np.ndarray
    mask: np.ndarray
    labels: list[str]
    objects: list[SceneObject]
    background: str


def sample_background(
    backgrounds: ForeignBackgrounds, rng: np.random.Generator, height: int, width: int
) -> tuple[np.ndarray, str]:
    """A (height, width, 3) uint8 background drawn as `ForeignBackgrounds.sample` draws them
    (32x32, scaled up bicubically), at any frame size, and the name of its kind."""
    kind = list(backgrounds.kinds)[rng.choice(len(backgrounds.kinds), p=KIND_WEIGHTS)]
    small = np.clip(np.rint(backgrounds.kinds[kind](rng)), 0, 255).astype(np.uint8)
    image = Image.fromarray(small).resize((width, height), Image.Resampling.BICUBIC)
    return np.asarray(image), kind


def _fits(candidate: SceneObject, placed: list[SceneObject], config: SceneConfig) -> bool:
    """Whether `candidate`, drawn over `placed`, overlaps none of them by more than
    `max_overlap` of the smaller one's area and leaves each at least MIN_VISIBLE visible."""
    (x, y), r = candidate.centre, candidate.size / 2
    for index, other in enumerate(placed):
        (ox, oy), other_r = other.centre, other.size / 2
        distance = np.hypot(x - ox, y - oy)
        if distance >= r + other_r + APART_GAP:
            continue
        if config.max_overlap == 0:
            return False
        shared = np.minimum(candidate.cover, other.cover).sum()
        if shared > config.max_overlap * min(candidate.cover.sum(), other.cover.sum()):
            return False
        hidden = candidate.solid.copy()
        for later in placed[index + 1 :]:
            hidden |= later.solid
        if (other.solid & ~hidden).sum() < MIN_VISIBLE * other.solid.sum():
            return False
    return True


def _place(labels: list[str], rng: np.random.Generator, config: SceneConfig) -> list[SceneObject]:
    """Objects of classes `labels`, bottom to top, placed by `_fits`' rules; a scene where one
    does not fit in PLACE_TRIES tries starts afresh."""
    height, width = config.height, config.width
    low, high = (config.scale * s for s in SIZE_RANGE)
    for _ in range(SCENE_TRIES):
        placed: list[SceneObject] = []
        for label in labels:
            for _ in range(PLACE_TRIES):
                size = rng.uniform(low, high)
                r = size / 2
                cx, cy = rng.uniform(r + 1, width - r - 1), rng.uniform(r + 1, height - r - 1)
                cover = coverage(outline(label, rng), size, cx, cy, height, width)
                candidate = SceneObject(label, size, (cx, cy), cover)
                if _fits(candidate, placed, config):
                    placed.append(candidate)
                    break
            else:
                break
        else:
            return placed
    raise RuntimeError(
        f"could not place {len(labels)} objects in a {height}x{width} frame with max_overlap "
        f"{config.max_overlap} in {SCENE_TRIES} tries; ask for fewer objects or more overlap"
    )


def index_mask(objects: list[SceneObject], classes: Sequence[str], void_rim: bool) -> np.ndarray:
    """(H, W) uint8 mask of `objects` drawn bottom to top: 0 background, i the i-th of
    `classes` (1-based), VOID on rims when `void_rim` (see the module's docstring)."""
    mask = np.zeros(objects[0].cover.shape, dtype=np.uint8)
    for obj in objects:
        value = classes.index(obj.label) + 1
        if void_rim:
            mask[obj.cover >= RIM[1]] = value
            mask[(obj.cover > RIM[0]) & (obj.cover < RIM[1])] = VOID
        else:
            mask[obj.solid] = value
    return mask


def _split_key(split: str) -> int:
    return zlib.crc32(f"foreign_scenes/{split}".encode())


def draw_scene(
    backgrounds: ForeignBackgrounds, seed: int, split: str, index: int, config: SceneConfig
) -> Scene:
    """Scene `index` of `split`: a background, then the objects over it with their colours and
    opacities drawn as `foreign.draw_sample` draws them."""
    rng = np.random.default_rng([seed, _split_key(split), index])
    image, kind = sample_background(backgrounds, rng, config.height, config.width)
    count = rng.integers(config.objects[0], config.objects[1] + 1)
    labels = [config.classes[i] for i in rng.integers(len(config.classes), size=count)]
    objects = _place(labels, rng, config)
    result = image.astype(np.float64)
    for obj in objects:
        obj.colour = rng.integers(0, 256, 3)
        obj.alpha = rng.uniform(*ALPHA_RANGE) if rng.random() < TRANSLUCENT_FRACTION else 1.0
        weight = (obj.alpha * obj.cover)[..., None]
        result = result * (1 - weight) + obj.colour * weight
    mask = index_mask(objects, config.classes, config.void_rim)
    present = [name for i, name in enumerate(config.classes, 1) if (mask == i).any()]
    image = np.clip(np.rint(result), 0, 255).astype(np.uint8)
    return Scene(image, mask, present, objects, kind)


def write_scene(root: Path, split: str, stem: str, scene: Scene) -> None:
    """Write one scene: RGB image, palette index mask, capitalised classes one per line."""
    Image.fromarray(scene.image).save(root / "images" / split / f"{stem}.png")
    mask = Image.fromarray(scene.mask)
    mask.putpalette(PALETTE)  # turns the grey image into a palette one, indices untouched
    mask.save(root / "masks" / split / f"{stem}.png")
    text = "".join(f"{name.capitalize()}\n" for name in scene.labels)
    (root / "labels" / split / f"{stem}.txt").write_text(text)


def generate_foreign_scenes(
    root: str | Path,
    split_sizes: dict[str, int] | None = None,
    seed: int = 0,
    config: SceneConfig | None = None,
    progress: bool = True,
) -> Path:
    """Generate the scenes folder at `root` (atomically); splits of size 0 are left out."""
    root = Path(root)
    split_sizes = dict(DEFAULT_SPLIT_SIZES if split_sizes is None else split_sizes)
    config = SceneConfig() if config is None else config
    with atomic_build(root, split_sizes, seed) as tmp:
        (tmp / CLASSES_FILE).write_text("".join(f"{c.capitalize()}\n" for c in config.classes))
        sizes = {s: n for s, n in split_sizes.items() if n}
        _fill(tmp, sizes, seed, config, ForeignBackgrounds(), progress)
        recipe = {"generator": Path(__file__).stem, "seed": seed, "split_sizes": split_sizes}
        (tmp / RECIPE).write_text(json.dumps(recipe | asdict(config), indent=2) + "\n")
    return root


def _fill(
    tmp: Path,
    split_sizes: dict[str, int],
    seed: int,
    config: SceneConfig,
    backgrounds: ForeignBackgrounds,
    progress: bool,
) -> None:
    for split in split_sizes:
        for kind in ("images", "masks", "labels"):
            (tmp / kind / split).mkdir(parents=True)
    with tqdm(
        total=sum(split_sizes.values()), desc="Generating foreign scenes", disable=not progress
    ) as bar:
        for split, count in split_sizes.items():
            for index in range(count):
                scene = draw_scene(backgrounds, seed, split, index, config)
                write_scene(tmp, split, f"img_{index:06d}", scene)
                bar.update()


def main(argv: Sequence[str] | None = None) -> Path:
    """`python benchmarks/foreign_scenes.py --root data/foreign_scenes --seed 0 ...`"""
    defaults = SceneConfig()
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--root", default="data/foreign_scenes", help="output folder (must not exist)"
    )
    parser.add_argument("--seed", type=int, default=0)
    for split, count in DEFAULT_SPLIT_SIZES.items():
        parser.add_argument(f"--{split}", type=int, default=count, help=f"{split} images")
    parser.add_argument(
        "--classes",
        nargs="+",
        type=str.lower,
        default=list(defaults.classes),
        help=f"classes, in label order, from {list(SHAPES)}",
    )
    parser.add_argument(
        "--objects",
        nargs=2,
        type=int,
        metavar=("MIN", "MAX"),
        default=list(defaults.objects),
        help="objects per image",
    )
    parser.add_argument(
        "--max-overlap",
        type=float,
        default=defaults.max_overlap,
        help="most area two objects share, as a share of the smaller one's (0: none touch)",
    )
    parser.add_argument(
        "--void-rim",
        action=argparse.BooleanOptionalAction,
        default=defaults.void_rim,
        help="mark pixels an object covers strictly between 1/4 and 3/4 of as 255 (ignored)",
    )
    parser.add_argument("--height", type=int, default=defaults.height)
    parser.add_argument("--width", type=int, default=defaults.width)
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    args = parser.parse_args(argv)
    try:
        config = SceneConfig(
            tuple(args.classes),
            tuple(args.objects),
            args.max_overlap,
            args.void_rim,
            args.height,
            args.width,
        )
    except ValueError as error:
        parser.error(str(error))
    sizes = {split: getattr(args, split) for split in DEFAULT_SPLIT_SIZES}
    root = generate_foreign_scenes(args.root, sizes, args.seed, config, not args.no_progress)
    print(root)
    return root


if __name__ == "__main__":
    main()
