"""The shapes dataset: generator, background sources, the folder reader and the datamodule.

The re-exports are resolved lazily, so `from lit_gradcam.data import CLASSES` stays cheap and
`python -m lit_gradcam.data.generate` does not import its own module twice.
"""

from __future__ import annotations

import importlib
from typing import Any

#: Class names in label-index order (the reference dataset's order).
CLASSES = ("circle", "square", "triangle", "star", "diamond")

_EXPORTS = {
    "BackgroundUnavailableError": "lit_gradcam.data.backgrounds",
    "DatasetError": "lit_gradcam.data.dataset",
    "ShapesFolder": "lit_gradcam.data.dataset",
    "ShapesDataModule": "lit_gradcam.data.datamodule",
    "generate_dataset": "lit_gradcam.data.generate",
}
__all__ = ["CLASSES", *_EXPORTS]


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
