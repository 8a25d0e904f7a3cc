"""Fine-tuning plumbing on the real vit_b architecture (random weights, 2 images): the frozen
encoder embeds each image once, only the decoder learns, the export loads as an official file."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import lightning as L
import pytest
import torch
from segment_anything import sam_model_registry

from lit_gradcam.data.datamodule import ShapesDataModule
from lit_gradcam.data.generate import generate_dataset
from lit_gradcam.sam_training import SamTuner
from lit_gradcam.sam_training.export import export_sam


@pytest.mark.slow
def test_vit_b_decoder_finetune_plumbing(
    tmp_path: Path, make_trainer: Callable[..., L.Trainer]
) -> None:
    torch.manual_seed(0)
    initial = tmp_path / "vit_b_random.pth"
    torch.save(sam_model_registry["vit_b"](checkpoint=None).state_dict(), initial)
    sizes = {"train": 2, "val": 2, "test": 2}
    root = generate_dataset(tmp_path / "two", sizes, progress=False)
    data = ShapesDataModule(
        root=str(root), batch_size=2, train_size=2, val_size=2, test_size=2, seed=0
    )
    tuner = SamTuner(
        model_type="vit_b",
        checkpoint=str(initial),
        trainable=["mask_decoder"],
        prompt_mix={"point": 1.0, "box": 1.0},
    )
    frozen = {k: v.clone() for k, v in tuner.sam.state_dict().items() if "mask_decoder" not in k}
    decoder = {k: v.clone() for k, v in tuner.sam.mask_decoder.state_dict().items()}
    encoded: list[int] = []
    tuner.sam.image_encoder.register_forward_hook(
        lambda module, args, output: encoded.append(args[0].shape[0])
    )
    L.seed_everything(0)
    trainer = make_trainer(max_steps=2)  # two epochs of one batch: the second reads the cache
    trainer.fit(tuner, data)
    assert encoded == [2]
    state = tuner.sam.state_dict()
    assert all(torch.equal(state[key], value) for key, value in frozen.items())
    trained = tuner.sam.mask_decoder.state_dict()
    assert any(not torch.equal(trained[key], value) for key, value in decoder.items())

    trainer.save_checkpoint(tmp_path / "tuned.ckpt")
    model_type, exported = export_sam(tmp_path / "tuned.ckpt", tmp_path / "sam_vit_b_tuned.pth")
    assert model_type == "vit_b"
    official = sam_model_registry["vit_b"](checkpoint=str(exported))
    assert all(torch.equal(value, state[key]) for key, value in official.state_dict().items())
