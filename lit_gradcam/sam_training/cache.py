"""Image embeddings of a frozen encoder, computed once per image and reused across epochs.

Keyed by the image's content (shape and a digest of its uint8 pixels) rather than a dataset
index, so it needs nothing from the data module, survives shuffling and DDP sharding, and cannot
serve a stale embedding for a changed image. Kept on the CPU: an official SAM's embedding of one
image is several megabytes.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable

import torch
from torch import Tensor


def image_key(image: Tensor) -> tuple[tuple[int, ...], bytes]:
    """Shape and blake2b digest of one uint8 image (CPU)."""
    digest = hashlib.blake2b(image.contiguous().numpy().tobytes(), digest_size=16).digest()
    return tuple(image.shape), digest


class EmbeddingCache:
    """Embeddings by image content; `get` encodes only the images it has not seen."""

    def __init__(self) -> None:
        self._store: dict[tuple[tuple[int, ...], bytes], Tensor] = {}

    def __len__(self) -> int:
        return len(self._store)

    def get(
        self, images: Tensor, encode: Callable[[Tensor], Tensor], device: torch.device
    ) -> Tensor:
        """(B, C, h, w) embeddings of uint8 `images` (B, 3, H, W) on `device`; `encode` runs once,
        on the distinct unseen images only, and receives them on `images`' device."""
        keys = [image_key(image) for image in images.cpu()]
        missing: dict[tuple[tuple[int, ...], bytes], int] = {}
        for index, key in enumerate(keys):
            if key not in self._store:
                missing.setdefault(key, index)
        if missing:
            fresh = encode(images[list(missing.values())]).detach().cpu()
            for key, embedding in zip(missing, fresh, strict=True):
                self._store[key] = embedding.clone()
        return torch.stack([self._store[key] for key in keys]).to(device)
