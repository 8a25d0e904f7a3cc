"""Promptable segmenters behind one seam: `embed` once per image, `predict` per prompt set.

The re-exports are resolved lazily, so importing the seam (`segmenters.base`) or GrabCut does
not import the SAM modules.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "BACKGROUND": "lit_gradcam.segmenters.base",
    "FOREGROUND": "lit_gradcam.segmenters.base",
    "PAD_LABEL": "lit_gradcam.segmenters.base",
    "Prompts": "lit_gradcam.segmenters.base",
    "Segmenter": "lit_gradcam.segmenters.base",
    "SAM_CHECKPOINTS": "lit_gradcam.segmenters.checkpoints",
    "CheckpointArchitectureError": "lit_gradcam.segmenters.checkpoints",
    "CheckpointDownloadError": "lit_gradcam.segmenters.checkpoints",
    "CheckpointIntegrityError": "lit_gradcam.segmenters.integrity",
    "load_sam": "lit_gradcam.segmenters.checkpoints",
    "resolve_checkpoint": "lit_gradcam.segmenters.checkpoints",
    "GrabCutSegmenter": "lit_gradcam.segmenters.grabcut",
    "SamSegmenter": "lit_gradcam.segmenters.sam",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
