"""Prompt strategies: Grad-CAM heatmaps in, point and box prompts (and, via the segmenter, masks)
out. YAML names them by ``class_path: lit_gradcam.prompts.<Class>`` and ``init_args``."""

from lit_gradcam.prompts.base import PromptStrategy
from lit_gradcam.prompts.strategies import (
    CamBox,
    CamConsensus,
    CenterPoint,
    ForegroundBackground,
    GroundTruthCentroid,
    PeakAndValley,
    TopKForeground,
    WeightedCentroid,
)

__all__ = [
    "CamBox",
    "CamConsensus",
    "CenterPoint",
    "ForegroundBackground",
    "GroundTruthCentroid",
    "PeakAndValley",
    "PromptStrategy",
    "TopKForeground",
    "WeightedCentroid",
]
