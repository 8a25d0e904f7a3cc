"""Shared fixtures: a tiny randomly initialised SAM built from segment_anything's own modules."""

from __future__ import annotations

from collections.abc import Callable
from functools import partial

import pytest
import torch
from segment_anything.modeling import (
    ImageEncoderViT,
    MaskDecoder,
    PromptEncoder,
    Sam,
    TwoWayTransformer,
)

PROMPT_DIM = 32


def build_tiny_sam(seed: int = 0, embed_dim: int = 32) -> Sam:
    """SAM's wiring (see build_sam.py) with a one-block, narrow ViT: fast on CPU.

    img_size stays 1024 because the prompt encoder's coordinate maths assumes it.
    """
    torch.manual_seed(seed)
    sam = Sam(
        image_encoder=ImageEncoderViT(
            img_size=1024,
            patch_size=16,
            embed_dim=embed_dim,
            depth=1,
            num_heads=1,
            mlp_ratio=2,
            out_chans=PROMPT_DIM,
            norm_layer=partial(torch.nn.LayerNorm, eps=1e-6),
            window_size=0,
        ),
        prompt_encoder=PromptEncoder(
            embed_dim=PROMPT_DIM,
            image_embedding_size=(64, 64),
            input_image_size=(1024, 1024),
            mask_in_chans=16,
        ),
        mask_decoder=MaskDecoder(
            num_multimask_outputs=3,
            transformer=TwoWayTransformer(
                depth=2, embedding_dim=PROMPT_DIM, mlp_dim=64, num_heads=2
            ),
            transformer_dim=PROMPT_DIM,
            iou_head_depth=3,
            iou_head_hidden_dim=32,
        ),
    )
    return sam.eval()


@pytest.fixture(scope="session")
def make_tiny_sam() -> Callable[..., Sam]:
    """`build_tiny_sam` (test modules cannot import conftest under --import-mode=importlib)."""
    return build_tiny_sam


@pytest.fixture(scope="session")
def tiny_sam() -> Sam:
    return build_tiny_sam()
