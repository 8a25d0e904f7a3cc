"""A multi-label classifier's checkpoint with the validation split of its folder, the pair that
the class-map benchmarks score."""

from __future__ import annotations

import sys

from lit_gradcam.classifier.model import ShapeClassifier
from lit_gradcam.data.datamodule import ShapesDataModule


def load_multi_label_run(checkpoint: str, root: str) -> tuple[ShapeClassifier, ShapesDataModule]:
    """The classifier (eval mode, on the CPU) and the folder with its validation split read;
    exits with a message when the checkpoint's classifier is single-label."""
    model = ShapeClassifier.load_from_checkpoint(checkpoint, map_location="cpu").eval()
    if not model.hparams.multi_label:
        sys.exit(f"{checkpoint} is a single-label classifier; a multi-label one was expected")
    data = ShapesDataModule(root=root, generate=False)
    data.setup("validate")
    return model, data
