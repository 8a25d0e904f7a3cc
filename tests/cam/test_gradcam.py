"""Grad-CAM, Grad-CAM++ and LayerCAM against the grad-cam package (the correctness oracle)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from pytorch_grad_cam import GradCAM as PackageGradCAM
from pytorch_grad_cam import GradCAMPlusPlus as PackageGradCAMPlusPlus
from pytorch_grad_cam import LayerCAM as PackageLayerCAM
from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget
from torch import Tensor, nn

from lit_gradcam.cam import GradCAM, GradCAMPlusPlus, LayerCAM
from lit_gradcam.classifier.backbones import build_resnet

METHODS = [
    (GradCAM, PackageGradCAM),
    (GradCAMPlusPlus, PackageGradCAMPlusPlus),
    (LayerCAM, PackageLayerCAM),
]
LAYER_SETS = [("layer2.1",), ("layer3.1", "layer2.1")]
TARGETS = [0, 1, 2, 3, 4, 2]


def _package_maps(
    package_class: type, model: nn.Module, layers: tuple[str, ...], images: Tensor, targets
) -> np.ndarray:
    """The package's maps, one image at a time (its batch handling is not what we test)."""
    modules = [model.get_submodule(name) for name in layers]
    maps = []
    for i, image in enumerate(images):
        target = None if targets is None else [ClassifierOutputTarget(targets[i])]
        with package_class(model=model, target_layers=modules) as cam:
            maps.append(cam(input_tensor=image[None], targets=target)[0])
    return np.stack(maps)


@pytest.mark.parametrize("targets", [TARGETS, None], ids=["explicit", "predicted"])
@pytest.mark.parametrize("layers", LAYER_SETS, ids=["layer2", "layer3+layer2"])
@pytest.mark.parametrize("ours, package", METHODS, ids=lambda m: getattr(m, "__name__", ""))
def test_matches_the_grad_cam_package(resnet, images, ours, package, layers, targets) -> None:
    with ours(resnet, list(layers)) as cam:
        maps = cam(images, targets)
    expected = _package_maps(package, resnet, layers, images, targets)
    assert maps.dtype == np.float32 and maps.shape == (6, 48, 64)
    assert np.abs(maps - expected).max() <= 1e-4
    assert maps.min() >= 0 and maps.max() <= 1


def test_targets_change_the_map(resnet, images) -> None:
    cam = GradCAM(resnet, ["layer2.1"])
    first = cam.heatmaps(images, [0] * 6)
    second = cam.heatmaps(images, [3] * 6)
    assert (first - second).abs().flatten(1).amax(1).min() > 0.05


@pytest.mark.parametrize("method", [GradCAM, GradCAMPlusPlus, LayerCAM])
def test_batch_equals_one_image_at_a_time(resnet, images, method) -> None:
    cam = method(resnet, ["layer3.1", "layer2.1"])
    batch = cam.heatmaps(images, TARGETS)
    single = torch.cat([cam.heatmaps(images[i : i + 1], [t]) for i, t in enumerate(TARGETS)])
    torch.testing.assert_close(batch, single, atol=1e-5, rtol=0)


@pytest.mark.parametrize("layer", ["layer2.1", "layer3.1"])
def test_matches_the_package_on_a_model_without_layer4(images, layer) -> None:
    """With `model.stages 3` the gradients reach the layer through layer3 and the narrower
    head alone; the maps still match the package's."""
    torch.manual_seed(3)
    model = build_resnet("resnet18", 5, None, stages=3).eval()
    with GradCAM(model, [layer]) as cam:
        maps = cam(images, TARGETS)
    expected = _package_maps(PackageGradCAM, model, (layer,), images, TARGETS)
    assert expected.max() > 0 and np.abs(maps - expected).max() <= 1e-4
