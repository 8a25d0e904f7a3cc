"""`compute_heatmaps` and the `CamSpec` options: method table, flip averaging, input scale."""

from __future__ import annotations

import pytest
import torch

from lit_gradcam.cam import CamSpec, GradCAM, LayerCAM, compute_heatmaps
from lit_gradcam.cam.heatmaps import CAM_CLASSES
from lit_gradcam.cam.maps import minmax
from lit_gradcam.cam.spec import CAM_METHODS


def test_every_method_name_has_a_class() -> None:
    assert tuple(CAM_CLASSES) == CAM_METHODS


def test_default_spec_is_the_seeds_grad_cam(resnet, images) -> None:
    maps, logits = compute_heatmaps(resnet, images, CamSpec())
    torch.testing.assert_close(maps, GradCAM(resnet, ["layer2.1"]).heatmaps(images))
    with torch.no_grad():
        torch.testing.assert_close(logits, resnet(images))


def test_flip_average_is_the_mean_of_both_maps_for_the_unflipped_class(resnet, images) -> None:
    spec = CamSpec(method="layercam", layers=("layer3.1", "layer2.1"), flip_average=True)
    maps, logits = compute_heatmaps(resnet, images, spec)
    with torch.no_grad():
        predicted = resnet(images).argmax(1)
    cam = LayerCAM(resnet, ["layer3.1", "layer2.1"])
    mirrored = cam.heatmaps(images.flip(-1), predicted).flip(-1)
    expected = minmax((cam.heatmaps(images, predicted) + mirrored) / 2)
    torch.testing.assert_close(maps, expected, atol=1e-5, rtol=0)
    torch.testing.assert_close(logits.argmax(1), predicted)


def test_input_scale_keeps_the_image_size_and_the_native_prediction(resnet, images) -> None:
    spec = CamSpec(input_scale=2.0, align=True)
    maps, logits = compute_heatmaps(resnet, images, spec)
    assert maps.shape == (6, 48, 64) and maps.min() >= 0 and maps.max() <= 1
    with torch.no_grad():
        torch.testing.assert_close(logits, resnet(images))


def test_explicit_targets_reach_the_cam(resnet, images) -> None:
    targets = [4, 3, 2, 1, 0, 0]
    maps, _ = compute_heatmaps(resnet, images, CamSpec(), targets)
    torch.testing.assert_close(maps, GradCAM(resnet, ["layer2.1"]).heatmaps(images, targets))


def test_spec_validation() -> None:
    assert CamSpec(layers="layer1.1").layers == ("layer1.1",)
    with pytest.raises(ValueError, match="method"):
        CamSpec(method="hirescam")
    with pytest.raises(ValueError, match="input_scale"):
        CamSpec(input_scale=0)
