"""The segmenter seam: `Prompts` in, masks out, with the expensive image embedding done once.

A `Segmenter` splits its work in two so that one embedding serves many prompt sets:
`embed(images) -> state` (per image, expensive: SAM's image encoder) and
`predict(state, prompts) -> (masks, scores)` (cheap, any number of times per state).
`select(state, index)` picks images out of a state (repeats allowed), so that several objects
of one image are segmented in one `predict` call without a second `embed`.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any

import torch
from torch import Tensor

from lit_gradcam.errors import ConfigError
from lit_gradcam.prompt_types import Prompts


class Segmenter(ABC):
    """A promptable segmenter. Subclasses keep their init arguments plain for YAML."""

    #: Short name used in metric keys, e.g. ``eval/{name}/{strategy}/iou``.
    name: str = "segmenter"

    @abstractmethod
    def embed(self, images: Tensor) -> Any:
        """Per-image expensive work for uint8 RGB images (B, 3, H, W); returns an opaque state."""

    @abstractmethod
    def predict(
        self, state: Any, prompts: Prompts, heatmaps: Tensor | None = None
    ) -> tuple[Tensor, Tensor]:
        """Masks (B, H, W) bool at the original size and scores (B,) for `prompts` on `state`.

        heatmaps: (B, H, W) the CAM the prompts came from, for segmenters that choose among
        candidate masks by their agreement with it (`mask_choice: cam`); others ignore it.
        """

    def select(self, state: Any, index: Tensor) -> Any:
        """The state of the images at `index` (1-D, repeats allowed), as if `embed` had been
        given only those: per-object strategies prompt each object of an image apart."""
        raise ConfigError(
            f"segmenter {self.name!r} ({type(self).__qualname__}) cannot segment several objects "
            "per image: it does not implement `select`"
        )

    @property
    def selects(self) -> bool:
        """Whether this segmenter implements `select` (several objects per image, clicks)."""
        return type(self).select is not Segmenter.select

    def for_class_maps(self) -> Segmenter:
        """This segmenter as the class-map path uses it, one call per object of several per
        image; the same segmenter unless a subclass sets itself up otherwise for objects."""
        return self

    def to(self, device: torch.device | str) -> Segmenter:
        """Move any model weights to `device` (no-op for weight-free segmenters)."""
        return self
