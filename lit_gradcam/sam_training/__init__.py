"""Training and fine-tuning Segment Anything on (image, mask) pairs: `SamTuner` and its parts."""

from lit_gradcam.sam_training.tuner import SamTuner

__all__ = ["SamTuner"]
