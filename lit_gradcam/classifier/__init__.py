"""The classifier side: `ShapeClassifier` (the ResNet Grad-CAM reads), its backbones, its
training jitter, the shapes weights it can start from, and the no-shape flag that rides beside
it as a callback with a net of its own."""

from lit_gradcam.classifier.model import ShapeClassifier

# registers the `weights: shapes` loader with the classifier (see `shapes_weights`)
from lit_gradcam.classifier import shapes_weights  # noqa: E402, F401  isort: skip

__all__ = ["ShapeClassifier"]
