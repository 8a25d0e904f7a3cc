"""NoShapeFlag: a presence phase of its own when fit starts, a threshold from fit's
validations, its state in the checkpoint, and nothing shared with the classifier."""

from __future__ import annotations

from types import SimpleNamespace

import lightning as L
import pytest
import torch
from torch.utils.data import DataLoader, TensorDataset

from lit_gradcam.classifier import ShapeClassifier
from lit_gradcam.classifier.no_shape import NoShapeFlag
from lit_gradcam.classifier.presence import PresenceTraining, ShapePresence
from lit_gradcam.classifier.schedule import lengthen_fresh_head_run
from lit_gradcam.errors import ConfigError


class _Batches(L.LightningDataModule):
    """Fixed (image, label, mask) batches: squares of one colour on noise."""

    def __init__(self) -> None:
        super().__init__()
        generator = torch.Generator().manual_seed(1)
        self.images = torch.randn(24, 3, 32, 40, generator=generator) * 0.5
        self.masks = torch.zeros(24, 32, 40, dtype=torch.bool)
        self.masks[:, 8:20, 10:24] = True
        self.images[:, :, 8:20, 10:24] = 1.5
        self.labels = torch.arange(24) % 5

    def _loader(self) -> DataLoader:
        return DataLoader(TensorDataset(self.images, self.labels, self.masks), batch_size=8)

    def train_dataloader(self) -> DataLoader:
        return self._loader()

    def val_dataloader(self) -> DataLoader:
        return self._loader()


def _fit(
    make_trainer, flag: NoShapeFlag | None, steps: int = 4
) -> tuple[ShapeClassifier, L.Trainer]:
    torch.manual_seed(0)
    model = ShapeClassifier(augmentation=None)
    callbacks = [] if flag is None else [flag]
    trainer = make_trainer(
        max_steps=steps,
        val_check_interval=steps,
        check_val_every_n_epoch=None,
        limit_val_batches=1.0,
        callbacks=callbacks,
    )
    trainer.fit(model, datamodule=_Batches())
    return model, trainer


def test_the_phase_leaves_the_classifiers_training_as_it_was(make_trainer) -> None:
    """The ResNet ends with the same weights with the flag and without it: no shared optimizer,
    schedule or random draws."""
    with_flag, _ = _fit(make_trainer, NoShapeFlag(steps=3))
    without, _ = _fit(make_trainer, None)
    pairs = zip(with_flag.state_dict().items(), without.state_dict().values(), strict=True)
    for (name, a), b in pairs:
        assert torch.equal(a, b), name


def test_the_threshold_is_the_quantile_of_the_validation_scores_and_lives_in_the_checkpoint(
    make_trainer, tmp_path
) -> None:
    flag = NoShapeFlag(steps=3, quantile=0.25)
    assert flag.flags(torch.randn(2, 3, 32, 40)) is None  # untrained: no flag
    _, trainer = _fit(make_trainer, flag)
    data = _Batches()
    with torch.no_grad():
        ranked = torch.sigmoid(flag.net(data.images)).flatten(1).sort(1, descending=True)
    scores = ranked.values[:, : flag.net.top_pixels].mean(dim=1)
    assert flag.threshold == pytest.approx(torch.quantile(scores, 0.25).item(), abs=1e-5)
    assert flag.flags(data.images).tolist() == (scores < flag.threshold).tolist()

    checkpoint = tmp_path / "model.ckpt"
    trainer.save_checkpoint(checkpoint)
    loaded = NoShapeFlag.from_checkpoint(checkpoint)
    assert loaded.threshold == flag.threshold
    torch.testing.assert_close(loaded.net.state_dict(), flag.net.state_dict())
    assert not any(key.startswith("presence") for key in torch.load(checkpoint)["state_dict"])


def test_images_of_no_class_are_left_out_of_the_calibration() -> None:
    """A multi-label folder may hold images of no class: the threshold is a quantile of the
    scores of images that hold a shape, so those are the only ones collected."""
    torch.manual_seed(0)
    flag = NoShapeFlag()
    flag._load_net(ShapePresence().state_dict())
    images = torch.randn(4, 3, 32, 40)
    targets = torch.tensor([[0.0, 0.0], [1.0, 0.0], [0.0, 0.0], [1.0, 1.0]])
    fitting = SimpleNamespace(state=SimpleNamespace(fn="fit"), sanity_checking=False)
    flag.on_validation_batch_end(fitting, None, None, (images, targets, None), 0)
    flag.on_validation_batch_end(fitting, None, None, (images[:1], targets[:1], None), 1)
    with torch.no_grad():
        torch.testing.assert_close(flag._scores.compute(), flag.scores(images[[1, 3]]))


def test_a_resumed_fit_keeps_the_trained_net(make_trainer, tmp_path) -> None:
    flag = NoShapeFlag(steps=3)
    _, trainer = _fit(make_trainer, flag)
    checkpoint = tmp_path / "model.ckpt"
    trainer.save_checkpoint(checkpoint)
    resumed = NoShapeFlag(steps=3)
    torch.manual_seed(0)
    model = ShapeClassifier(augmentation=None)
    trainer = make_trainer(
        max_steps=4, val_check_interval=4, check_val_every_n_epoch=None, callbacks=[resumed]
    )
    trainer.fit(model, datamodule=_Batches(), ckpt_path=checkpoint)
    torch.testing.assert_close(resumed.net.state_dict(), flag.net.state_dict())


def test_the_phase_trains_the_net_on_the_masks(make_trainer) -> None:
    """The phase's steps change the net."""
    flag = NoShapeFlag()
    _fit(make_trainer, flag, steps=5)
    torch.manual_seed(flag.seed)
    untrained = ShapePresence()
    changed = [
        not torch.equal(a, b)
        for a, b in zip(
            flag.net.state_dict().values(), untrained.state_dict().values(), strict=True
        )
    ]
    assert any(changed)


class _FreshHeadClassifier(ShapeClassifier):
    """A classifier whose run is lengthened as a fresh head's is, without pretrained weights."""

    def setup(self, stage: str) -> None:
        super().setup(stage)
        lengthen_fresh_head_run(self.trainer, 3.0)


@pytest.mark.parametrize(
    ("model_class", "classifier_steps"), [(ShapeClassifier, 4), (_FreshHeadClassifier, 12)]
)
def test_the_phase_trains_as_long_as_the_configured_run_not_a_fresh_heads(
    make_trainer, monkeypatch, model_class: type, classifier_steps: int
) -> None:
    phase_steps = []
    original = PresenceTraining.training_step

    def counted(self, *args, **kwargs):
        phase_steps.append(1)
        return original(self, *args, **kwargs)

    monkeypatch.setattr(PresenceTraining, "training_step", counted)
    model = model_class(augmentation=None)
    trainer = make_trainer(
        max_steps=4, val_check_interval=4, check_val_every_n_epoch=None, limit_val_batches=1.0,
        callbacks=[NoShapeFlag()],
    )  # fmt: skip
    trainer.fit(model, datamodule=_Batches())
    assert trainer.global_step == classifier_steps and len(phase_steps) == 4


def test_steps_zero_turns_the_flag_off(make_trainer) -> None:
    flag = NoShapeFlag(steps=0)
    _fit(make_trainer, flag)
    assert flag.net is None and flag.flags(torch.randn(1, 3, 32, 40)) is None
    assert flag.state_dict() == {}


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"quantile": 1.0}, "no_shape.quantile must be in"),
        ({"steps": -1}, "no_shape.steps must be >= 0"),
        ({"lr": 0.0}, "no_shape.lr must be > 0"),
    ],
)
def test_bad_settings_are_named(kwargs: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        NoShapeFlag(**kwargs)
