"""No-click segmentation: a ResNet shape classifier, Grad-CAM prompts and Segment Anything."""

# registers the `weights: shapes` loader with the classifier (see `lit_gradcam.pretrained`)
import lit_gradcam.pretrained  # noqa: F401
