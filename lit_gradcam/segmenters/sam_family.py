"""`SamFamilySegmenter`: what SAM and SAM 2 share behind the `Segmenter` seam.

Both keep the same settings (encoder chunk size, `multimask`, encoder autocast, `mask_choice`),
build their model on first use (so a config naming them parses offline), check their images the
same way and decode the same way: padding points are dropped, as the official predictors are
given only real points, and the images with as many real points form one group, one decoder
call each. A subclass says how its model is built and how one group is decoded.
"""

from __future__ import annotations

import contextlib
from abc import abstractmethod
from typing import Any, TypeVar

import torch
from torch import Tensor, nn

from lit_gradcam.errors import ConfigError
from lit_gradcam.prompt_types import PAD_LABEL, Prompts
from lit_gradcam.segmenters.base import Segmenter
from lit_gradcam.segmenters.mask_choice import check_mask_choice

_Segmenter = TypeVar("_Segmenter", bound="SamFamilySegmenter")

#: `multimask` settings: three candidates only for an ambiguous prompt, always, or never.
MULTIMASK_MODES = ("auto", "always", "never")
#: `autocast` settings: the image encoder's dtype under autocast.
AUTOCAST_DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}


def check_sam_settings(encode_batch_size: int, multimask: str, autocast: str | None) -> None:
    """A `ConfigError` for a setting every SAM segmenter shares that is out of range."""
    if multimask not in MULTIMASK_MODES:
        raise ConfigError(f"multimask must be one of {MULTIMASK_MODES}, got {multimask!r}")
    if autocast is not None and autocast not in AUTOCAST_DTYPES:
        raise ConfigError(
            f"autocast must be None or one of {sorted(AUTOCAST_DTYPES)}, got {autocast!r}"
        )
    if encode_batch_size < 1:
        raise ConfigError(f"encode_batch_size must be >= 1, got {encode_batch_size}")


def encoder_autocast(
    autocast: str | None, device: torch.device
) -> contextlib.AbstractContextManager:
    """The image encoder's autocast context for an `autocast` setting (none for None)."""
    if autocast is None:
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=AUTOCAST_DTYPES[autocast])


def wants_multimask(multimask: str, points: Tensor, boxes: Tensor | None) -> bool:
    """Whether a prompt set of `points` (G, N, 2) and `boxes` gets three candidates: always,
    never, or ("auto", SAM's advice) when it is ambiguous: at most one point and no box."""
    return multimask == "always" or (multimask == "auto" and points.shape[1] <= 1 and boxes is None)


def check_images(images: Tensor) -> None:
    """A `ValueError` unless `images` are uint8 RGB (B, 3, H, W), what `embed` encodes."""
    if images.ndim != 4 or images.shape[1] != 3 or images.dtype != torch.uint8:
        raise ValueError(
            f"images must be uint8 (B, 3, H, W), got {images.dtype} {tuple(images.shape)}"
        )


class SamFamilySegmenter(Segmenter):
    """The settings, lazy model and grouped decoding of SAM-like segmenters (see the module).

    Subclasses build the model (`_build`), encode (`embed`), pick images out of a state
    (`select`) and decode one group (`_decode_group`); their states have `original_size`
    (H, W), `device` and a length (the number of images).
    """

    #: Where `_decode_group` wants the prompts: None = on the model's device.
    prompt_device: str | None = None

    def __init__(
        self,
        encode_batch_size: int,
        multimask: str,
        autocast: str | None,
        mask_choice: str,
        name: str,
    ) -> None:
        """The shared settings, as each subclass documents them and defaults them."""
        check_sam_settings(encode_batch_size, multimask, autocast)
        self.encode_batch_size = encode_batch_size
        self.multimask = multimask
        self.autocast = autocast
        self.mask_choice = check_mask_choice(mask_choice)
        self.name = name
        self._model: nn.Module | None = None

    @abstractmethod
    def _build(self) -> nn.Module:
        """The model, built and loaded from the configured checkpoint."""

    @property
    @abstractmethod
    def mask_threshold(self) -> float:
        """Logit above which a pixel is in the mask."""

    @abstractmethod
    def _decode_group(
        self,
        state: Any,
        points: Tensor,
        labels: Tensor,
        boxes: Tensor | None,
        heatmaps: Tensor | None,
    ) -> tuple[Tensor, Tensor]:
        """(G, H, W) logits and (G,) IoU for the G images of `state`, each with the same number
        of points (prompts in original-image pixels, on `prompt_device`)."""

    @classmethod
    def from_model(cls: type[_Segmenter], model: nn.Module, **kwargs: Any) -> _Segmenter:
        """A segmenter around an already built model (no checkpoint is resolved)."""
        segmenter = cls(**kwargs)
        segmenter._model = model.eval()
        return segmenter

    @property
    def model(self) -> Any:
        """The model, built and loaded from the checkpoint on first access."""
        if self._model is None:
            self._model = self._build()
        return self._model

    def to(self: _Segmenter, device: torch.device | str) -> _Segmenter:
        self.model.to(device)
        return self

    def predict(
        self, state: Any, prompts: Prompts, heatmaps: Tensor | None = None
    ) -> tuple[Tensor, Tensor]:
        """Masks (B, H, W) bool and predicted IoU (B,) for each image's prompts; `heatmaps`
        (B, H, W) serve `mask_choice: cam`."""
        logits, scores = self.predict_logits(state, prompts, heatmaps)
        return logits > self.mask_threshold, scores

    @torch.inference_mode()
    def predict_logits(
        self, state: Any, prompts: Prompts, heatmaps: Tensor | None = None
    ) -> tuple[Tensor, Tensor]:
        """Mask logits (B, H, W) float at the original size and predicted IoU (B,) of the
        candidate `mask_choice` keeps, decoded in groups of images with as many real points."""
        height, width = state.original_size
        batch = len(state)
        if prompts.batch_size != batch:
            raise ValueError(f"{prompts.batch_size} prompt sets for {batch} embedded images")
        prompts.validate(height, width)
        device = self.model.device
        prompts = prompts.to(self.prompt_device or device)
        logits = torch.empty(batch, height, width, device=device)
        scores = torch.empty(batch, device=device)
        real = prompts.labels != PAD_LABEL
        counts = real.sum(1)
        for n_points in counts.unique().tolist():
            group = (counts == n_points).nonzero()[:, 0]
            keep = real[group]
            group_logits, group_scores = self._decode_group(
                self.select(state, group),
                prompts.points[group][keep].view(len(group), n_points, 2),
                prompts.labels[group][keep].view(len(group), n_points),
                None if prompts.boxes is None else prompts.boxes[group],
                None if heatmaps is None else heatmaps[group.to(heatmaps.device)],
            )
            # float32 out, as under mixed precision the decoder may run in a lower one
            logits[group.to(device)] = group_logits.float()
            scores[group.to(device)] = group_scores.float()
        return logits.to(state.device), scores.to(state.device)
