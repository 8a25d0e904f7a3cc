"""`compute_heatmaps`: the CAM a `CamSpec` names, for a batch, with the logits of the same pass."""

from __future__ import annotations

from collections.abc import Iterable

import torch.nn.functional as F
from torch import Tensor, nn

from lit_gradcam.cam.base import BaseCAM
from lit_gradcam.cam.gradcam import GradCAM
from lit_gradcam.cam.gradcam_pp import GradCAMPlusPlus
from lit_gradcam.cam.layercam import LayerCAM
from lit_gradcam.cam.spec import CamSpec

#: `CamSpec.method` -> the class computing it.
CAM_CLASSES: dict[str, type[BaseCAM]] = {
    "gradcam": GradCAM,
    "gradcam++": GradCAMPlusPlus,
    "layercam": LayerCAM,
}


def build_cam(model: nn.Module, spec: CamSpec) -> BaseCAM:
    """The CAM object for `spec` on `model`. Cheap (it only resolves the layer names; hooks
    are added per batch), so callers need not cache it."""
    return CAM_CLASSES[spec.method](
        model,
        spec.layers,
        flip_average=spec.flip_average,
        input_scale=spec.input_scale,
        align=spec.align,
    )


def compute_heatmaps(
    model: nn.Module,
    images: Tensor,
    spec: CamSpec,
    targets: Iterable[int] | Tensor | None = None,
) -> tuple[Tensor, Tensor]:
    """Heatmaps (B, H, W) in [0, 1] and logits (B, K), both on the model's device.

    targets: a class id per image; None = each image's top predicted class (with
    `spec.flip_average`, the mirrored image is mapped for the unmirrored image's class). The
    logits are the classifier's on the unmirrored images at their own size (from the CAM's
    forward pass unless `spec.input_scale` rescales the images).
    """
    return build_cam(model, spec).heatmaps(images, targets, return_logits=True)


def resize_heatmaps(heatmaps: Tensor, size: tuple[int, int]) -> Tensor:
    """Heatmaps (B, H, W) resized bilinearly to `size` (height, width), kept in [0, 1]."""
    if tuple(heatmaps.shape[-2:]) == tuple(size):
        return heatmaps
    resized = F.interpolate(
        heatmaps[:, None], size=tuple(size), mode="bilinear", align_corners=False
    )
    return resized[:, 0].clamp(0, 1)
