"""Prompt strategies: Grad-CAM heatmaps in, point and box prompts (and, via the segmenter, masks)
out. YAML names them by ``class_path: lit_gradcam.prompts.<Class>`` and ``init_args``."""

from lit_gradcam.prompts import strategies
from lit_gradcam.prompts.base import PromptStrategy
from lit_gradcam.prompts.strategies import *  # noqa: F403 - the one list is strategies.__all__

__all__ = ["PromptStrategy", *strategies.__all__]
