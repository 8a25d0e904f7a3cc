"""Background sources: natural-looking, seeded, and CIFAR-10's clear offline error."""

from __future__ import annotations

from pathlib import Path
from urllib.error import URLError

import numpy as np
import pytest
import torchvision.datasets

from lit_gradcam.data.backgrounds import (
    HEIGHT,
    WIDTH,
    BackgroundUnavailableError,
    Cifar10Backgrounds,
    NaturalBackgrounds,
    make_background_source,
)
from lit_gradcam.data.generate import generate_dataset


def _roughness(image: np.ndarray) -> float:
    """Mean absolute difference between horizontal neighbours (about 85 for uniform noise)."""
    return float(np.abs(np.diff(image.astype(float), axis=1)).mean())


def test_natural_backgrounds_are_seeded_varied_and_smooth():
    source = NaturalBackgrounds()
    first = [source.sample(np.random.default_rng([4, i])) for i in range(40)]
    again = [source.sample(np.random.default_rng([4, i])) for i in range(40)]
    assert all(a.shape == (HEIGHT, WIDTH, 3) and a.dtype == np.uint8 for a in first)
    assert all((a == b).all() for a, b in zip(first, again, strict=True))
    assert len({a.tobytes() for a in first}) == 40
    assert max(_roughness(a) for a in first) < 20  # blurry photos, not noise
    assert np.mean([a.std() for a in first]) > 15  # but not flat either
    means = np.array([a.reshape(-1, 3).mean(0) for a in first])
    assert means.std(0).min() > 10  # colours vary from image to image


def test_cifar10_offline_gives_one_clear_error(tmp_path: Path, monkeypatch):
    def offline(*args, **kwargs):
        raise URLError("Temporary failure in name resolution")

    monkeypatch.setattr(torchvision.datasets, "CIFAR10", offline)
    with pytest.raises(BackgroundUnavailableError) as error:
        make_background_source("cifar10", tmp_path / "cifar10")
    message = str(error.value)
    assert "CIFAR-10 could not be downloaded" in message
    assert str((tmp_path / "cifar10").resolve()) in message
    assert "background: natural" in message
    with pytest.raises(BackgroundUnavailableError):
        generate_dataset(tmp_path / "shapes", {"train": 5}, background="cifar10", progress=False)
    assert not (tmp_path / "shapes").exists()


def test_cifar10_images_are_upscaled_to_the_shapes_size(tmp_path: Path, monkeypatch):
    class FakeCifar:
        def __init__(self, root: str, train: bool, download: bool) -> None:
            assert root == str(tmp_path) and download
            self.data = np.random.default_rng(0).integers(0, 256, (7, 32, 32, 3), dtype=np.uint8)

    monkeypatch.setattr(torchvision.datasets, "CIFAR10", FakeCifar)
    source = Cifar10Backgrounds(tmp_path)
    image = source.sample(np.random.default_rng(1))
    assert image.shape == (HEIGHT, WIDTH, 3) and image.dtype == np.uint8
    assert (image == source.sample(np.random.default_rng(1))).all()
    # bilinear upscaling of 32x32 noise is smoother than the noise itself
    assert _roughness(image) < 0.8 * _roughness(source.images[0])


def test_unknown_background_is_rejected(tmp_path: Path):
    with pytest.raises(ValueError, match="natural"):
        make_background_source("plasma", tmp_path)
