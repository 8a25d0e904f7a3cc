"""Shared fixtures: a seeded resnet18 whose maps and predictions are not degenerate."""

from __future__ import annotations

import pytest
import torch
import torchvision
from torch import Tensor, nn

NUM_CLASSES = 5


def _seeded_resnet18() -> nn.Module:
    """resnet18 (random weights, 5 classes) with perturbed BatchNorm statistics and a head
    centred on a calibration batch, so that the top class varies from image to image."""
    torch.manual_seed(0)
    model = torchvision.models.resnet18(weights=None, num_classes=NUM_CLASSES)
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, nn.BatchNorm2d):
                module.running_mean.normal_(0, 0.2)
                module.running_var.uniform_(0.5, 2)
                module.weight.uniform_(0.5, 1.5)
                module.bias.normal_(0, 0.3)
        model.eval()
        head, model.fc = model.fc, nn.Identity()
        features = model(torch.randn(16, 3, 48, 64))
        model.fc = head
        head.weight.div_(features.std(0) + 1e-6)
        head.bias.copy_(-(head.weight @ features.mean(0)))
    return model


@pytest.fixture(scope="session")
def resnet() -> nn.Module:
    """The shared model in eval mode; tests that change it must restore it."""
    return _seeded_resnet18()


@pytest.fixture(scope="session")
def images() -> Tensor:
    """Six normalised-looking 48 x 64 images."""
    return torch.randn(6, 3, 48, 64, generator=torch.Generator().manual_seed(1))
