"""The fused image-encoder attention computes what segment_anything's own `Attention` does."""

from __future__ import annotations

from functools import partial

import pytest
import torch
from segment_anything.modeling import ImageEncoderViT
from segment_anything.modeling.image_encoder import Attention

from lit_gradcam.segmenters.fused_attention import FusedAttention, fuse_attention
from lit_gradcam.segmenters.sam_models import build_sam_tiny


def _encoder(use_rel_pos: bool) -> ImageEncoderViT:
    return ImageEncoderViT(
        img_size=32,
        patch_size=4,
        embed_dim=32,
        depth=2,
        num_heads=4,
        out_chans=16,
        norm_layer=partial(torch.nn.LayerNorm, eps=1e-6),
        use_rel_pos=use_rel_pos,
        window_size=0,
    )


@pytest.mark.parametrize("use_rel_pos", [False, True])
def test_fused_encoder_matches_official_outputs_and_gradients(use_rel_pos: bool) -> None:
    torch.manual_seed(0)
    official = _encoder(use_rel_pos)
    if use_rel_pos:  # non-zero relative positions, so that they matter
        for block in official.blocks:
            torch.nn.init.normal_(block.attn.rel_pos_h)
            torch.nn.init.normal_(block.attn.rel_pos_w)
    fused = _encoder(use_rel_pos)
    fused.load_state_dict(official.state_dict())
    fuse_attention(fused)
    official, fused = official.double(), fused.double()  # compare maths, not float32 rounding
    assert all(type(block.attn) is FusedAttention for block in fused.blocks)

    images = torch.randn(3, 3, 32, 32, dtype=torch.float64)
    expected, actual = official(images), fused(images)
    torch.testing.assert_close(actual, expected)
    expected.square().sum().backward()
    actual.square().sum().backward()
    for (name, ours), theirs in zip(fused.named_parameters(), official.parameters(), strict=True):
        torch.testing.assert_close(ours.grad, theirs.grad, msg=name)


def test_sam_tiny_weights_load_into_the_official_classes() -> None:
    torch.manual_seed(0)
    tiny = build_sam_tiny()
    assert all(type(block.attn) is FusedAttention for block in tiny.image_encoder.blocks)
    plain = build_sam_tiny()
    for block in plain.image_encoder.blocks:
        block.attn.__class__ = Attention
    plain.load_state_dict(tiny.state_dict())
    images = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        torch.testing.assert_close(
            tiny.image_encoder(images), plain.image_encoder(images), rtol=1e-4, atol=1e-5
        )
