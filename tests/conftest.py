"""Fixtures shared by every test folder: one tiny generated dataset per session, copied wherever
a test breaks it, and a Trainer factory for short CPU runs."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import lightning as L
import pytest
from helpers.datasets import TINY_SIZES

from lit_gradcam.data.generate import generate_dataset


@pytest.fixture(scope="session")
def tiny_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A generated dataset (seed 0, TINY_SIZES); never modify it, copy it (see `tiny_copy`)."""
    return generate_dataset(tmp_path_factory.mktemp("tiny") / "shapes", TINY_SIZES, progress=False)


@pytest.fixture
def tiny_copy(tiny_root: Path, tmp_path: Path) -> Path:
    """A private copy of `tiny_root` that a test may break."""
    return Path(shutil.copytree(tiny_root, tmp_path / "shapes"))


@pytest.fixture
def make_trainer(tmp_path: Path) -> Callable[..., L.Trainer]:
    """A Trainer factory for short CPU runs: one process, nothing logged, saved or shown and no
    validation unless a test passes its own settings, which override these."""

    def make(**kwargs) -> L.Trainer:
        settings = {
            "accelerator": "cpu",
            "devices": 1,
            "logger": False,
            "enable_checkpointing": False,
            "enable_progress_bar": False,
            "enable_model_summary": False,
            "default_root_dir": tmp_path,
            "limit_val_batches": 0,
            "num_sanity_val_steps": 0,
        }
        return L.Trainer(**{**settings, **kwargs})

    return make
