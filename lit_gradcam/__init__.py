"""No-click segmentation: a ResNet shape classifier, Grad-CAM prompts and Segment Anything."""
