"""What a CAM is given, checked and converted: its target layers, the images, the classes."""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import torch
from torch import Tensor, nn

from lit_gradcam.errors import ConfigError

#: How many module names a "no such layer" error lists.
_LISTED_NAMES = 20


def differentiable(images: Tensor, device: torch.device) -> Tensor:
    """`images` on `device`, as a tensor autograd may use (a copy if made in inference mode)."""
    if torch.is_inference_mode_enabled():
        raise RuntimeError(
            "Grad-CAM needs gradients, which torch.inference_mode() forbids. Inside "
            "Lightning's test/validate/predict loops use Trainer(inference_mode=False)."
        )
    images = images.to(device)
    if images.is_inference():
        with torch.inference_mode(False):
            return images.clone()
    return images


def class_targets(targets: Iterable[int] | Tensor | None, logits: Tensor) -> Tensor:
    """Class ids (B,) on the logits' device; None = each image's top predicted class."""
    if targets is None:
        return logits.argmax(1)
    if not isinstance(targets, (Tensor, np.ndarray)):
        targets = list(targets)
    chosen = torch.as_tensor(targets, device=logits.device).long().reshape(-1)
    batch, classes = logits.shape
    if len(chosen) != batch:
        raise ValueError(f"got {len(chosen)} targets for {batch} images")
    if len(chosen) and (chosen.min() < 0 or chosen.max() >= classes):
        raise ValueError(f"targets must be class ids in [0, {classes}), got {chosen.tolist()}")
    return chosen


def resolve_layer(model: nn.Module, layer: nn.Module | str) -> nn.Module:
    """The module named by a dotted path, or `layer` itself after checking it is in `model`."""
    if isinstance(layer, nn.Module):
        if not any(module is layer for module in model.modules()):
            raise ValueError(f"target layer {type(layer).__name__} is not a module of the model")
        return layer
    try:
        module = model.get_submodule(layer)
    except AttributeError:
        names = [
            name
            for name, module in model.named_modules()
            if name and name.count(".") <= 1 and not isinstance(module, nn.Identity)
        ]
        listed = ", ".join(names[:_LISTED_NAMES]) + (", ..." if len(names) > _LISTED_NAMES else "")
        raise ConfigError(
            f"no layer {layer!r} in {type(model).__name__}; valid names include: {listed}"
        ) from None
    if isinstance(module, nn.Identity):  # a stage or pool the model was built without
        raise ConfigError(
            f"layer {layer!r} is removed from this {type(model).__name__} (an nn.Identity, as "
            "with model.stages below 4 or model.stem_maxpool false): it has no activations of "
            "its own; name a layer the model keeps, e.g. 'layer2.1'"
        )
    return module


def device_of(model: nn.Module) -> torch.device:
    """The device of the model's first parameter (the CPU for a model without any)."""
    param = next(model.parameters(), None)
    return param.device if param is not None else torch.device("cpu")
