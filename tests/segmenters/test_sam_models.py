"""Loading SAM weights with architecture checks, and naming the architecture of a state dict."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from lit_gradcam.segmenters.sam_models import (
    CheckpointArchitectureError,
    guess_model_type,
    load_sam,
)


def test_load_sam_round_trips_a_state_dict(tmp_path: Path, make_tiny_sam) -> None:
    path = tmp_path / "tiny.pth"
    torch.save(make_tiny_sam(seed=1).state_dict(), path)
    sam = load_sam("tiny", path, registry={"tiny": make_tiny_sam})
    expected = make_tiny_sam(seed=1).state_dict()
    assert all(torch.equal(value, expected[key]) for key, value in sam.state_dict().items())
    assert not sam.training


def test_load_sam_names_file_and_both_architectures(tmp_path: Path, make_tiny_sam) -> None:
    path = tmp_path / "narrow.pth"
    state = make_tiny_sam(embed_dim=16).state_dict()
    state["image_encoder.patch_embed.proj.weight"] = torch.zeros(768, 3, 16, 16)  # as vit_b's
    torch.save(state, path)
    with pytest.raises(CheckpointArchitectureError) as info:
        load_sam("tiny", path, registry={"tiny": make_tiny_sam})
    message = str(info.value)
    assert str(path) in message and "'tiny'" in message and "looks like a 'vit_b'" in message


@pytest.mark.parametrize(
    ("content", "why"),
    [
        (b"not a checkpoint", "not a PyTorch file (torch.save writes a zip archive), or cut short"),
        (b"", "an empty file"),
    ],
)
def test_load_sam_rejects_non_state_dicts(
    tmp_path: Path, make_tiny_sam, content: bytes, why: str
) -> None:
    path = tmp_path / "garbage.pth"
    path.write_bytes(content)
    with pytest.raises(CheckpointArchitectureError) as info:
        load_sam("tiny", path, registry={"tiny": make_tiny_sam})
    assert str(info.value).startswith(f"{path} is not a loadable SAM state dict for 'tiny': {why}")


def test_guess_model_type() -> None:
    key = "image_encoder.patch_embed.proj.weight"
    assert guess_model_type({key: torch.empty(1024, 3, 16, 16)}) == "vit_l"
    assert guess_model_type({key: torch.empty(32, 3, 16, 16)}) is None
    assert guess_model_type({}) is None
