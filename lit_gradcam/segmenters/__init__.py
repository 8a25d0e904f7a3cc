"""Promptable segmenters behind one seam: `embed` once per image, `predict` per prompt set."""

from lit_gradcam.segmenters.base import (
    BACKGROUND,
    FOREGROUND,
    PAD_LABEL,
    Prompts,
    Segmenter,
    denormalize_to_uint8,
)
from lit_gradcam.segmenters.checkpoints import (
    SAM_CHECKPOINTS,
    CheckpointArchitectureError,
    CheckpointDownloadError,
    load_sam,
    resolve_checkpoint,
)
from lit_gradcam.segmenters.grabcut import GrabCutSegmenter
from lit_gradcam.segmenters.sam import SamSegmenter

__all__ = [
    "BACKGROUND",
    "FOREGROUND",
    "PAD_LABEL",
    "SAM_CHECKPOINTS",
    "CheckpointArchitectureError",
    "CheckpointDownloadError",
    "GrabCutSegmenter",
    "Prompts",
    "SamSegmenter",
    "Segmenter",
    "denormalize_to_uint8",
    "load_sam",
    "resolve_checkpoint",
]
