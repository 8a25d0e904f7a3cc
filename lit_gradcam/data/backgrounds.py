"""Background sources: 48x64 RGB images that look like upscaled CIFAR-10 (blurry natural photos).

The reference data drew its shapes over CIFAR-10 images blown up from 32x32, so the classifier
learns to ignore textured, low-frequency clutter. `cifar10` uses those very images (downloaded where
there is network); `natural`, the offline default, mimics them with random crops of the colour
photos that scikit-image ships inside its package folder, shrunk to 32x32 and scaled back up.
Every source draws only from the numpy Generator it is given, so a seed fixes the output.
"""

from __future__ import annotations

from pathlib import Path
from typing import Protocol

import numpy as np
from PIL import Image

from lit_gradcam.errors import ConfigError, UserError

HEIGHT, WIDTH = 48, 64


def dataset_scale(height: int, width: int) -> float:
    """How many times an image of this size is the dataset's, by its shorter side: the factor
    by which lengths in px given for the dataset's images (radii, distances) scale on it."""
    return min(height, width) / HEIGHT


#: The side CIFAR-10 images have; `natural` crops pass through it to get the same blur.
CIFAR_SIDE = 32
#: Colour natural photos bundled in skimage/data (no fetcher, no download).
NATURAL_PHOTOS = (
    "astronaut.png",
    "chelsea.png",
    "coffee.png",
    "motorcycle_left.png",
    "motorcycle_right.png",
    "rocket.jpg",
)
BACKGROUNDS = ("natural", "cifar10")


class BackgroundUnavailableError(UserError, RuntimeError):
    """A background source cannot be loaded (CIFAR-10 missing offline, photos not on disk)."""


class BackgroundSource(Protocol):
    """Anything that draws one HEIGHT x WIDTH x 3 uint8 background from a numpy Generator."""

    def sample(self, rng: np.random.Generator) -> np.ndarray: ...


def _upscale(small: Image.Image, rng: np.random.Generator) -> np.ndarray:
    """Bilinear 32x32 -> 48x64 (CIFAR's upscaling blur), mirrored half of the time."""
    image = np.asarray(small.resize((WIDTH, HEIGHT), Image.Resampling.BILINEAR))
    return np.ascontiguousarray(image[:, ::-1]) if rng.random() < 0.5 else image


class NaturalBackgrounds:
    """Random crops of scikit-image's bundled colour photos, passed through 32x32 like CIFAR.

    Six photos are few, so each crop also gets a random scale (2% to 50% of the shorter side
    squared), brightness/contrast jitter and, half of the time, a channel permutation: the
    result is varied colour and texture with natural-image statistics, never noise.
    """

    def __init__(self, photo_dir: Path | None = None) -> None:
        if photo_dir is None:
            import skimage

            photo_dir = Path(skimage.__file__).parent / "data"
        missing = [name for name in NATURAL_PHOTOS if not (photo_dir / name).is_file()]
        if missing:
            raise BackgroundUnavailableError(
                f"natural backgrounds need scikit-image's bundled photos, but {missing} are not "
                f"in {photo_dir}; reinstall scikit-image or use `background: cifar10`."
            )
        self.photos = []
        for name in NATURAL_PHOTOS:
            with Image.open(photo_dir / name) as photo:
                self.photos.append(photo.convert("RGB"))

    def sample(self, rng: np.random.Generator) -> np.ndarray:
        photo = self.photos[rng.integers(len(self.photos))]
        short = min(photo.size)
        side = short * np.sqrt(rng.uniform(0.02, 0.5))
        x0 = rng.uniform(0, photo.width - side)
        y0 = rng.uniform(0, photo.height - side)
        box = (x0, y0, x0 + side, y0 + side)
        small = np.asarray(
            photo.resize((CIFAR_SIDE, CIFAR_SIDE), Image.Resampling.BILINEAR, box=box),
            dtype=np.float32,
        )
        if rng.random() < 0.5:
            small = small[:, :, rng.permutation(3)]
        mean = small.mean()
        small = (small - mean) * rng.uniform(0.7, 1.3) + mean * rng.uniform(0.7, 1.3)
        small = np.clip(np.rint(small), 0, 255).astype(np.uint8)
        return _upscale(Image.fromarray(small), rng)


class Cifar10Backgrounds:
    """CIFAR-10 training images (torchvision), upscaled bilinearly to 48x64."""

    def __init__(self, root: str | Path) -> None:
        from torchvision.datasets import CIFAR10

        self.root = Path(root)
        try:
            self.images = CIFAR10(str(self.root), train=True, download=True).data
        except Exception as error:  # any download or read failure: one clear message
            raise BackgroundUnavailableError(
                f"CIFAR-10 could not be downloaded ({type(error).__name__}: {error}). Put the "
                f"extracted `cifar-10-batches-py/` folder (or `cifar-10-python.tar.gz`) in "
                f"{self.root.resolve()}, or use `background: natural`, which works offline."
            ) from error

    def sample(self, rng: np.random.Generator) -> np.ndarray:
        image = self.images[rng.integers(len(self.images))]
        return _upscale(Image.fromarray(image), rng)


def make_background_source(name: str, cifar_root: str | Path) -> BackgroundSource:
    """The background source called `name`; `cifar_root` is where CIFAR-10 lives or goes."""
    if name == "natural":
        return NaturalBackgrounds()
    if name == "cifar10":
        return Cifar10Backgrounds(cifar_root)
    raise ConfigError(f"unknown background {name!r}; choose one of {BACKGROUNDS}")
