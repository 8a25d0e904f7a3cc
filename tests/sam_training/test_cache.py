"""The embedding cache encodes each distinct image once and serves it in batch order."""

from __future__ import annotations

import torch

from lit_gradcam.sam_training.cache import EmbeddingCache


def test_each_image_is_encoded_once_and_returned_in_order() -> None:
    images = torch.randint(0, 256, (4, 3, 6, 8), dtype=torch.uint8)
    seen: list[int] = []

    def encode(batch: torch.Tensor) -> torch.Tensor:
        seen.append(batch.shape[0])
        return batch.float().mean((1, 2, 3))[:, None, None, None].expand(-1, 2, 3, 3)

    cache = EmbeddingCache()
    first = cache.get(images[:3], encode, torch.device("cpu"))
    again = cache.get(images[[3, 1, 0, 3]], encode, torch.device("cpu"))
    assert seen == [3, 1] and len(cache) == 4
    expected = encode(images)
    assert torch.equal(first, expected[:3])
    assert torch.equal(again, expected[[3, 1, 0, 3]])
    changed = images[:1].clone()
    changed[0, 0, 0, 0] ^= 1  # one pixel differs: a new image, not a stale embedding
    cache.get(changed, encode, torch.device("cpu"))
    assert seen[-1] == 1 and len(cache) == 5
