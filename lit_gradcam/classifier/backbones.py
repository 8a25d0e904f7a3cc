"""The torchvision ResNets the classifier trains, with torchvision's weights or none.

The shapes weights (`shapes_weights`) are trained by the classifier that sits above this
module; only their name is known here, so that a config naming them validates.
"""

from __future__ import annotations

import torch
import torchvision
from torch import nn

from lit_gradcam.errors import ConfigError, UserError

ARCHITECTURES = ("resnet18", "resnet34", "resnet50")
#: Residual stages of a torchvision ResNet (layer1 to layer4).
STAGES = 4
#: The `model.weights` value that selects the weights `shapes_weights` builds.
SHAPES_WEIGHTS = "shapes"


class WeightsUnavailableError(UserError, RuntimeError):
    """Pretrained weights were asked for but could not be fetched (no network, say)."""


def weight_enum(arch: str, weights: str | None) -> torchvision.models.WeightsEnum | None:
    """The torchvision weight enum named `weights` (None for scratch or ``shapes``); a clear
    ValueError for an unknown architecture or weight name."""
    if arch not in ARCHITECTURES:
        raise ConfigError(f"model.arch must be one of {ARCHITECTURES}, got {arch!r}")
    if weights is None or weights == SHAPES_WEIGHTS:
        return None
    enum_class = torchvision.models.get_model_weights(arch)
    try:
        return enum_class[weights]
    except KeyError:
        valid = [w.name for w in enum_class]
        raise ConfigError(
            f"model.weights: {weights!r} is not a weight of {arch}; valid: {valid}, "
            f"{SHAPES_WEIGHTS!r} or null"
        ) from None


def build_resnet(
    arch: str,
    num_classes: int,
    weights: str | None,
    stem_maxpool: bool = True,
    stages: int = STAGES,
) -> nn.Module:
    """A torchvision ResNet with a `num_classes` head. `weights`: None (from scratch) or a
    torchvision enum name (e.g. ``IMAGENET1K_V1``); ``shapes`` weights are loaded into it by
    `shapes_weights.load_shapes_weights`. Without `stem_maxpool` the stem downsamples 2x
    instead of 4x: every later feature map has twice the resolution (sharper heatmaps for
    small shapes) at several times the compute. With `stages` below four the last stages
    (layer4, then layer3, ...) become `nn.Identity` and the head reads the last one kept: on
    small images layer4 works on a 2x2 map, at a large share of each training step's time.
    """
    if weights == SHAPES_WEIGHTS:
        raise ValueError(
            f"build_resnet makes torchvision weights only; load {SHAPES_WEIGHTS!r} weights into "
            "its model with lit_gradcam.classifier.shapes_weights.load_shapes_weights"
        )
    if not 1 <= stages <= STAGES:  # before any download
        raise ConfigError(f"model.stages must be 1 to {STAGES}, got {stages}")
    enum = weight_enum(arch, weights)
    try:
        model = torchvision.models.get_model(arch, weights=enum)
    except OSError as error:  # urllib's URLError is an OSError
        raise WeightsUnavailableError(
            f"Could not download {arch} weights {weights} ({enum.url}): {error}. "
            f"Put the file in {torch.hub.get_dir()}/checkpoints/ or use `model.weights: shapes` "
            "(built offline) or `null` to train from scratch."
        ) from error
    features = model.fc.in_features // 2 ** (STAGES - stages)  # each stage doubles the width
    for index in range(stages + 1, STAGES + 1):
        setattr(model, f"layer{index}", nn.Identity())
    model.fc = nn.Linear(features, num_classes)
    if not stem_maxpool:
        model.maxpool = nn.Identity()
    return model
