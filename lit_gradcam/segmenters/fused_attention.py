"""The image encoder's attention through torch's fused `scaled_dot_product_attention`.

segment_anything's `Attention` materialises the (tokens x tokens) score matrix and its softmax,
a large share of a `sam_tiny` training step on a CPU. The fused kernel
computes the same thing from the same `qkv`/`proj` weights, so state dicts are unchanged and a
model saved with it loads into the official classes (`benchmarks/sam_fused_attention.py`
measures the speed-up). Only the image encoder is fused: the mask decoder runs under
`torch.func.vmap` (`segmenters.sam.decode_masks`), which has no batching rule for the fused
kernel and would fall back to a slow loop.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from segment_anything.modeling.image_encoder import Attention, ImageEncoderViT


class FusedAttention(Attention):
    """segment_anything's image-encoder `Attention` computed by the fused kernel; blocks with
    relative positions keep the original computation."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.use_rel_pos:
            return super().forward(x)
        batch, height, width, _ = x.shape
        # (3, B, heads, H * W, head_dim), as the original splits it
        qkv = self.qkv(x).reshape(batch, height * width, 3, self.num_heads, -1)
        query, key, value = qkv.permute(2, 0, 3, 1, 4).unbind(0)
        out = F.scaled_dot_product_attention(query, key, value, scale=self.scale)
        return self.proj(out.transpose(1, 2).reshape(batch, height, width, -1))


def fuse_attention(encoder: ImageEncoderViT) -> ImageEncoderViT:
    """Switch every block of `encoder` to `FusedAttention` in place (same parameters, so only
    the class changes) and return it."""
    for block in encoder.blocks:
        if type(block.attn) is Attention:
            block.attn.__class__ = FusedAttention
    return encoder
