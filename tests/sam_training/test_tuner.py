"""SamTuner trains a SAM through Lightning: sam_tiny from scratch, or the decoder of a frozen,
embedded-once encoder; its checkpoints load in SamSegmenter and export to the official format."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import lightning as L
import pytest
import torch
from helpers.datasets import TINY_SIZES
from lightning.pytorch.callbacks import Callback, ModelCheckpoint
from segment_anything import SamPredictor

from lit_gradcam.data.datamodule import ShapesDataModule
from lit_gradcam.data.dataset import ShapesFolder
from lit_gradcam.imaging import denormalize_to_uint8
from lit_gradcam.prompt_types import Prompts
from lit_gradcam.sam_training import SamTuner
from lit_gradcam.sam_training.export import export_sam
from lit_gradcam.sam_training.export import main as export_main
from lit_gradcam.sam_training.losses import sam_loss
from lit_gradcam.segmenters.sam import SamSegmenter
from lit_gradcam.segmenters.sam_models import build_sam_tiny


def _state(module: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {name: value.detach().clone() for name, value in module.state_dict().items()}


def _changed(before: dict[str, torch.Tensor], module: torch.nn.Module) -> bool:
    return any(not torch.equal(before[name], value) for name, value in module.state_dict().items())


def _tiny_file(tmp_path: Path) -> Path:
    torch.manual_seed(0)
    path = tmp_path / "sam_tiny_init.pth"
    torch.save(build_sam_tiny().state_dict(), path)
    return path


def _val_pixels(root: Path, count: int = 4) -> torch.Tensor:
    split = ShapesFolder(root, "val")
    return denormalize_to_uint8(torch.stack([split[index][0] for index in range(count)]))


def test_fit_logs_val_iou_and_its_checkpoint_loads_in_sam_segmenter(
    tmp_path: Path,
    tiny_root: Path,
    make_data: Callable[..., ShapesDataModule],
    make_trainer: Callable[..., L.Trainer],
) -> None:
    L.seed_everything(0)
    tuner = SamTuner()
    before = _state(tuner.sam)
    checkpoint = ModelCheckpoint(dirpath=tmp_path / "ckpt", save_last=True)
    trainer = make_trainer(
        max_steps=3, limit_val_batches=1, enable_checkpointing=True, callbacks=[checkpoint]
    )
    trainer.fit(tuner, make_data())
    assert {"val/iou_point", "val/iou_box", "train/loss"} <= set(trainer.callback_metrics)
    for part in ("image_encoder", "prompt_encoder", "mask_decoder"):
        assert _changed({k.split(".", 1)[1]: v for k, v in before.items() if k.startswith(part)},
                        getattr(tuner.sam, part)), part  # fmt: skip

    loaded = SamSegmenter("sam_tiny", checkpoint=str(tmp_path / "ckpt" / "last.ckpt"))
    trained = SamSegmenter.from_model(tuner.sam)
    pixels = _val_pixels(tiny_root)
    prompts = Prompts(torch.tensor([[[30.0, 20.0]]] * 4), torch.ones(4, 1, dtype=torch.long))
    expected, _ = trained.predict_logits(trained.embed(pixels), prompts)
    actual, _ = loaded.predict_logits(loaded.embed(pixels), prompts)
    assert torch.equal(actual, expected)


def test_training_lowers_the_loss_on_a_repeated_batch(
    make_data: Callable[..., ShapesDataModule], make_trainer: Callable[..., L.Trainer]
) -> None:
    losses: list[float] = []

    class Record(Callback):
        def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
            losses.append(float(outputs["loss"]))

    L.seed_everything(0)
    tuner = SamTuner(lr=3e-3, warmup_steps=1, prompt_mix={"point": 1.0}, correction=False)
    trainer = make_trainer(max_steps=20, overfit_batches=1, callbacks=[Record()])
    trainer.fit(tuner, make_data(batch_size=4))
    assert len(losses) == 20
    assert sum(losses[-5:]) < 0.7 * sum(losses[:5])


def test_border_weight_reaches_the_loss() -> None:
    masks = torch.zeros(2, 8, 8, dtype=torch.bool)
    masks[:, 2:6, 2:6] = True
    logits = torch.randn(2, 3, 8, 8, generator=torch.Generator().manual_seed(0))
    iou = torch.rand(2, 3, generator=torch.Generator().manual_seed(1))
    hp = {"focal_weight": 20.0, "dice_weight": 1.0, "iou_weight": 1.0, "focal_alpha": None}
    for weight in (0.0, 9.0):
        actual = SamTuner(border_weight=weight, **hp)._loss(logits, iou, masks).total
        expected = sam_loss(logits, iou, masks, *hp.values(), border_weight=weight).total
        assert torch.equal(actual, expected)
    plain = sam_loss(logits, iou, masks, *hp.values()).total
    assert (expected > plain).all()  # the border's errors now weigh more


def test_frozen_encoder_is_embedded_once_per_image_and_stays_as_it_was(
    tmp_path: Path,
    make_data: Callable[..., ShapesDataModule],
    make_trainer: Callable[..., L.Trainer],
) -> None:
    tuner = SamTuner(checkpoint=str(_tiny_file(tmp_path)), trainable=["mask_decoder"])
    encoder, prompt_encoder = _state(tuner.sam.image_encoder), _state(tuner.sam.prompt_encoder)
    decoder = _state(tuner.sam.mask_decoder)
    encoded: list[int] = []
    tuner.sam.image_encoder.register_forward_hook(
        lambda module, args, output: encoded.append(args[0].shape[0])
    )
    L.seed_everything(0)
    make_trainer(max_epochs=3).fit(tuner, make_data(batch_size=8))  # 3 epochs of 3 batches
    assert sum(encoded) == TINY_SIZES["train"] and len(tuner.cache) == TINY_SIZES["train"]
    assert not _changed(encoder, tuner.sam.image_encoder)
    assert not _changed(prompt_encoder, tuner.sam.prompt_encoder)
    assert _changed(decoder, tuner.sam.mask_decoder)


def test_export_writes_the_official_format(
    tmp_path: Path,
    tiny_root: Path,
    make_data: Callable[..., ShapesDataModule],
    make_trainer: Callable[..., L.Trainer],
) -> None:
    L.seed_everything(0)
    tuner = SamTuner(checkpoint=str(_tiny_file(tmp_path)), trainable=["mask_decoder"])
    trainer = make_trainer(max_steps=1)
    trainer.fit(tuner, make_data())
    trainer.save_checkpoint(tmp_path / "tuned.ckpt")

    model_type, exported = export_sam(tmp_path / "tuned.ckpt", tmp_path / "out" / "sam.pth")
    assert export_sam(tmp_path / "tuned.ckpt", exported, overwrite=True)[1] == exported
    assert model_type == "sam_tiny"
    plain = torch.load(exported, weights_only=True)
    direct = tuner.sam.state_dict()
    assert plain.keys() == direct.keys()
    assert all(torch.equal(plain[key], direct[key]) for key in plain)

    rebuilt = build_sam_tiny(checkpoint=exported)  # the official builders' signature
    image = _val_pixels(tiny_root, 1)
    predictor = SamPredictor(rebuilt)
    predictor.set_image(image[0].permute(1, 2, 0).numpy())
    masks, _, _ = predictor.predict(
        point_coords=torch.tensor([[30.0, 20.0]]).numpy(),
        point_labels=torch.tensor([1]).numpy(),
        multimask_output=False,
    )
    segmenter = SamSegmenter("sam_tiny", checkpoint=str(exported), multimask="never")
    ours, _ = segmenter.predict(
        segmenter.embed(image), Prompts(torch.tensor([[[30.0, 20.0]]]), torch.ones(1, 1).long())
    )
    assert torch.equal(ours[0], torch.from_numpy(masks[0]))


def test_export_refuses_a_checkpoint_without_model_type(tmp_path: Path) -> None:
    torch.save({"state_dict": {}}, tmp_path / "other.ckpt")
    with pytest.raises(ValueError, match="not a SamTuner checkpoint"):
        export_sam(tmp_path / "other.ckpt", tmp_path / "out.pth")


def test_export_keeps_an_existing_output_unless_told_to_overwrite(tmp_path: Path, capsys) -> None:
    """The command line refuses an existing output with one message and leaves it as it was;
    a checkpoint it cannot read gets one message too."""
    mine = tmp_path / "sam.pth"
    mine.write_bytes(b"my own weights")
    torch.save({"state_dict": {}}, tmp_path / "other.ckpt")
    for argv, message in (
        ([str(tmp_path / "other.ckpt"), str(mine)], "already exists: pass --overwrite"),
        ([str(tmp_path / "missing.ckpt"), str(tmp_path / "new.pth")], "cannot be read"),
        ([str(tmp_path / "other.ckpt"), str(mine / "new.pth")], "which is a file"),
    ):
        with pytest.raises(SystemExit) as exit_info:
            export_main(argv)
        assert exit_info.value.code == 2 and message in capsys.readouterr().err
    assert mine.read_bytes() == b"my own weights" and not (tmp_path / "new.pth").exists()


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"trainable": ["decoder"]}, "trainable parts"),
        ({"trainable": []}, "nothing to train"),
        ({"prompt_mix": {"scribble": 1.0}}, "prompt_mix modes"),
        ({"prompt_mix": {"point": 0.0}}, "prompt_mix shares"),
        ({"max_points": 0}, "max_points"),
        ({"border_weight": -1.0}, "border_weight"),
        ({"background_share": 1.5}, "background_share"),
        ({"lr": 0.0}, "model.lr must be > 0"),
        ({"warmup_steps": -1}, "model.warmup_steps must be >= 0"),
    ],
)
def test_invalid_arguments(kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        SamTuner(**kwargs)


def test_every_trainable_parameter_gets_a_gradient_as_ddp_requires() -> None:
    """DDP refuses a step that leaves a trainable parameter without gradient: with the default
    prompt mix on 4 images, every mode (and so every prompt embedding) is used."""
    torch.manual_seed(0)
    tuner = SamTuner(correction=False)
    tuner.log = tuner.log_dict = lambda *args, **kwargs: None
    masks = torch.zeros(4, 48, 64)
    masks[:, 10:30, 20:40] = 1
    images = torch.randn(4, 3, 48, 64)
    tuner.training_step((images, torch.zeros(4, dtype=torch.long), masks), 0).backward()
    trainable = {name for name, p in tuner.named_parameters() if p.requires_grad}
    assert {name for name in trainable if "prompt_encoder.point_embeddings" in name}
    missing = [name for name, p in tuner.named_parameters() if p.requires_grad and p.grad is None]
    assert missing == []
    assert not tuner.sam.prompt_encoder.mask_downscaling[0].weight.requires_grad  # no mask prompts
