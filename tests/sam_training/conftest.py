"""Shared fixtures: a tiny generated shapes dataset, and a Trainer factory for short CPU runs."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import lightning as L
import pytest

from lit_gradcam.data.datamodule import ShapesDataModule
from lit_gradcam.data.generate import generate_dataset

SIZES = {"train": 16, "val": 8, "test": 8}


@pytest.fixture(scope="session")
def shapes_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A generated dataset (seed 0, SIZES); never modify it."""
    return generate_dataset(tmp_path_factory.mktemp("sam_shapes") / "shapes", SIZES, progress=False)


@pytest.fixture
def make_data(shapes_root: Path) -> Callable[..., ShapesDataModule]:
    def make(batch_size: int = 8, **kwargs) -> ShapesDataModule:
        return ShapesDataModule(
            root=str(shapes_root),
            batch_size=batch_size,
            eval_batch_size=8,
            train_size=SIZES["train"],
            val_size=SIZES["val"],
            test_size=SIZES["test"],
            **kwargs,
        )

    return make


@pytest.fixture
def make_trainer(tmp_path: Path) -> Callable[..., L.Trainer]:
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
