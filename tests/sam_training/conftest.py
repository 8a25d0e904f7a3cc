"""Shared fixture: the tiny dataset as a data module (the dataset and the Trainer factory are
tests/conftest.py's)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from helpers.datasets import TINY_SIZES

from lit_gradcam.data.datamodule import ShapesDataModule


@pytest.fixture
def make_data(tiny_root: Path) -> Callable[..., ShapesDataModule]:
    """The shared tiny dataset (`tiny_root`) as a data module."""

    def make(batch_size: int = 8, **kwargs) -> ShapesDataModule:
        return ShapesDataModule(
            root=str(tiny_root),
            batch_size=batch_size,
            eval_batch_size=8,
            train_size=TINY_SIZES["train"],
            val_size=TINY_SIZES["val"],
            test_size=TINY_SIZES["test"],
            **kwargs,
        )

    return make
