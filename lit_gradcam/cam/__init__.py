"""Class-activation maps (Grad-CAM, Grad-CAM++, LayerCAM) and the report's heatmap smoothing."""

from lit_gradcam.cam.base import BaseCAM
from lit_gradcam.cam.gradcam import GradCAM
from lit_gradcam.cam.gradcam_pp import GradCAMPlusPlus
from lit_gradcam.cam.heatmaps import build_cam, compute_heatmaps
from lit_gradcam.cam.layercam import LayerCAM
from lit_gradcam.cam.spec import CamSpec
from lit_gradcam.cam.transform import InverseDistanceSmoothing

__all__ = [
    "BaseCAM",
    "CamSpec",
    "GradCAM",
    "GradCAMPlusPlus",
    "InverseDistanceSmoothing",
    "LayerCAM",
    "build_cam",
    "compute_heatmaps",
]
