"""Fixtures shared by every test folder: one tiny generated dataset per session, copied wherever
a test breaks it."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from lit_gradcam.data.generate import generate_dataset

TINY_SIZES = {"train": 20, "val": 10, "test": 10}


@pytest.fixture(scope="session")
def tiny_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A generated dataset (seed 0, TINY_SIZES); never modify it, copy it (see `tiny_copy`)."""
    return generate_dataset(tmp_path_factory.mktemp("tiny") / "shapes", TINY_SIZES, progress=False)


@pytest.fixture
def tiny_copy(tiny_root: Path, tmp_path: Path) -> Path:
    """A private copy of `tiny_root` that a test may break."""
    return Path(shutil.copytree(tiny_root, tmp_path / "shapes"))
