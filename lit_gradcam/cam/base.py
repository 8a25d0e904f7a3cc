"""`BaseCAM`: everything a gradient-based class-activation map needs except the weighting.

One forward and one backward per batch, whatever its size: the forward hooks keep each target
layer's activation, and ``torch.autograd.grad`` of the summed per-image target scores returns the
gradients w.r.t. those activations only. Parameters are frozen during the pass, so autograd
records nothing before the earliest target layer and computes no weight gradient at all (the
grad-cam package runs a full ``backward()``). Per layer the map is ReLU'd, min-maxed to [0, 1] at
the layer's resolution, resized to the image; several layers are averaged and min-maxed again,
exactly as the grad-cam package aggregates them.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from typing import Literal, overload

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from lit_gradcam.cam.inputs import class_targets, device_of, differentiable, resolve_layer
from lit_gradcam.cam.maps import minmax, resize_maps
from lit_gradcam.errors import ConfigError


class BaseCAM(ABC):
    """Class-activation maps of `model` at `target_layers`; subclasses define `layer_map`.

    Args:
        model: a classifier returning logits (B, K).
        target_layers: modules of `model`, or dotted names relative to it (``"layer2.1"``).
            Several layers are averaged. A module that runs more than once per forward (ResNet's
            shared ``relu``) contributes its last call.
        flip_average: also map the mirrored batch (for the unmirrored prediction's classes),
            mirror that map back, average the two and rescale to [0, 1]: cancels a learned
            left-right bias. Both halves go through the same forward and backward.
        input_scale: run the classifier on the batch upscaled (bilinear) by this factor, which
            gives the target layer a finer grid; maps come back at the original size. The
            logits (and the default targets) then come from an extra gradient-free forward of
            the images at their own size: the classifier's actual prediction.
        align: place each feature cell at its receptive-field centre instead of at the middle
            of the block of pixels it covers (see `maps.interpolation_matrix`).

    Hooks exist only while a batch is being mapped, so the model runs untouched between calls;
    `close()` (or leaving a ``with`` block) drops the reference to the model.
    """

    def __init__(
        self,
        model: nn.Module,
        target_layers: Sequence[nn.Module | str] | nn.Module | str,
        *,
        flip_average: bool = False,
        input_scale: float = 1.0,
        align: bool = False,
    ) -> None:
        if isinstance(target_layers, (str, nn.Module)):
            target_layers = [target_layers]
        if not target_layers:
            raise ConfigError("target_layers must name at least one layer, e.g. ['layer2.1']")
        if input_scale <= 0:
            raise ConfigError(f"input_scale must be positive, got {input_scale}")
        self.model: nn.Module | None = model
        self.target_layers = [resolve_layer(model, layer) for layer in target_layers]
        self.flip_average = flip_average
        self.input_scale = input_scale
        self.align = align

    @abstractmethod
    def layer_map(self, activations: Tensor, gradients: Tensor) -> Tensor:
        """The map (B, h, w) of one layer, before the ReLU, from its activations and the
        gradients of the target scores w.r.t. them (both (B, C, h, w), float32)."""

    # --- public API ----------------------------------------------------------------------
    def __call__(self, images: Tensor, targets: Iterable[int] | None = None) -> np.ndarray:
        """The grad-cam package's call shape: maps (B, H, W) float32 in [0, 1] as numpy.

        images: a normalised batch (B, 3, H, W); targets: a class id per image, None = each
        image's top predicted class.
        """
        return self.heatmaps(images, targets).cpu().numpy()

    @overload
    def heatmaps(
        self,
        images: Tensor,
        targets: Iterable[int] | Tensor | None = None,
        return_logits: Literal[False] = False,
    ) -> Tensor: ...

    @overload
    def heatmaps(
        self,
        images: Tensor,
        targets: Iterable[int] | Tensor | None = None,
        *,
        return_logits: Literal[True],
    ) -> tuple[Tensor, Tensor]: ...

    def heatmaps(
        self,
        images: Tensor,
        targets: Iterable[int] | Tensor | None = None,
        return_logits: bool = False,
    ) -> Tensor | tuple[Tensor, Tensor]:
        """Maps (B, H, W) float32 in [0, 1] on the model's device, and with `return_logits` the
        classifier's logits (B, K) for `images` (from the same forward pass unless
        `input_scale` rescales the images).

        Works under ``torch.no_grad()`` and on tensors created in inference mode, but not
        inside ``torch.inference_mode()`` itself (Lightning's test loop by default).
        """
        model = self._open_model()
        images = differentiable(images, device_of(model))
        size = images.shape[-2:]
        batch = self._classifier_input(images)
        with _frozen_eval(model):
            with torch.no_grad():  # the classifier's own logits, at the images' own size
                logits = model(images) if self.input_scale != 1 else None
            with torch.enable_grad():
                logits, activations, gradients = self._forward_backward(
                    model, batch, targets, len(images), logits
                )
        with torch.no_grad():
            maps = self._combine(activations, gradients, tuple(size), tuple(batch.shape[-2:]))
            if self.flip_average:
                maps = minmax((maps[: len(images)] + maps[len(images) :].flip(-1)) / 2)
        return (maps, logits.detach()) if return_logits else maps

    def _classifier_input(self, images: Tensor) -> Tensor:
        """The batch the classifier maps: the images, their mirror images with
        `flip_average`, all rescaled by `input_scale`."""
        batch = torch.cat([images, images.flip(-1)]) if self.flip_average else images
        if self.input_scale == 1:
            return batch
        scaled = [round(n * self.input_scale) for n in images.shape[-2:]]
        return F.interpolate(batch, size=scaled, mode="bilinear", align_corners=False)

    def close(self) -> None:
        """Drop the reference to the model; the object cannot map anything afterwards."""
        self.model = None
        self.target_layers = []

    def __enter__(self) -> BaseCAM:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # --- the pass ------------------------------------------------------------------------
    def _open_model(self) -> nn.Module:
        if self.model is None:
            raise RuntimeError(f"this {type(self).__name__} was closed")
        return self.model

    def _forward_backward(
        self,
        model: nn.Module,
        batch: Tensor,
        targets: Iterable[int] | Tensor | None,
        num_images: int,
        logits: Tensor | None,
    ) -> tuple[Tensor, list[Tensor], tuple[Tensor, ...]]:
        """The images' logits, the activations and their gradients, from one forward and one
        backward of `batch`.

        `logits` (when the batch was rescaled) or else the logits of the first `num_images`
        rows of `batch` choose the targets and are returned; any further rows (the mirrored
        copy) reuse those targets.
        """
        activations: dict[int, Tensor] = {}
        handles = [
            layer.register_forward_hook(_Capture(activations, index))
            for index, layer in enumerate(self.target_layers)
        ]
        try:
            output = model(batch)
        finally:
            for handle in handles:
                handle.remove()
        missing = [i for i in range(len(self.target_layers)) if i not in activations]
        if missing:
            raise RuntimeError(f"target layers {missing} did not run in the model's forward")
        logits = output[:num_images] if logits is None else logits
        chosen = class_targets(targets, logits).repeat(len(batch) // num_images)
        score = output.gather(1, chosen[:, None]).sum()
        ordered = [activations[i] for i in range(len(self.target_layers))]
        return logits, ordered, torch.autograd.grad(score, ordered)

    def _combine(
        self,
        activations: list[Tensor],
        gradients: Sequence[Tensor],
        size: tuple[int, int],
        input_size: tuple[int, int],
    ) -> Tensor:
        """Per layer: weighting, ReLU, min-max, resize; then the mean over layers, min-maxed."""
        per_layer = [
            resize_maps(
                minmax(self.layer_map(a.detach().float(), g.float()).clamp_min(0)),
                size,
                input_size,
                self.align,
            )
            for a, g in zip(activations, gradients, strict=True)
        ]
        return minmax(torch.stack(per_layer).mean(0))


class _Capture:
    """Forward hook: keeps a layer's output as a tensor autograd can differentiate w.r.t.

    With frozen parameters the earliest target layer's output does not require grad; it
    becomes a leaf that does, so autograd records only from there on. The network continues on
    a copy, so later in-place operations (BasicBlock's ``out += identity`` after ``bn2``, an
    in-place ReLU) cannot change the tensor we differentiate.
    """

    def __init__(self, store: dict[int, Tensor], index: int) -> None:
        self.store = store
        self.index = index

    def __call__(self, module: nn.Module, inputs: object, output: Tensor) -> Tensor:
        if not isinstance(output, Tensor) or output.dim() != 4:
            raise TypeError(
                f"target layer {type(module).__name__} must output a (B, C, h, w) tensor"
            )
        activation = output if output.requires_grad else output.detach().requires_grad_()
        self.store[self.index] = activation
        return activation.clone()


@contextmanager
def _frozen_eval(model: nn.Module) -> Iterator[None]:
    """Eval mode and no parameter requiring grad, both restored afterwards (even on errors)."""
    modes = [(module, module.training) for module in model.modules()]
    flags = [(param, param.requires_grad) for param in model.parameters()]
    model.eval()
    for param, _ in flags:
        param.requires_grad_(False)
    try:
        yield
    finally:
        for param, flag in flags:
            param.requires_grad_(flag)
        for module, training in modes:
            module.training = training
