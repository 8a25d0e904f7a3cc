"""`fresh_head_steps` and `fresh_head_lr`: a fit whose pretrained weights have no head for the
folder's classes trains longer at a higher learning rate; one that fine-tunes the weights' own
classes, or starts from scratch, does not."""

import lightning as L
import pytest
import torch
from torch.utils.data import DataLoader, TensorDataset

from lit_gradcam.classifier import ShapeClassifier
from lit_gradcam.classifier.model import PRETRAINED_LOADERS
from lit_gradcam.errors import ConfigError


def _fit(classifier: ShapeClassifier, max_steps: int) -> L.Trainer:
    images = torch.randn(8, 3, 32, 32)
    data = TensorDataset(images, torch.arange(8) % 5, torch.zeros(8, 32, 32, dtype=torch.bool))
    trainer = L.Trainer(
        max_steps=max_steps,
        max_epochs=-1,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        limit_val_batches=0,
    )
    trainer.fit(classifier, DataLoader(data, batch_size=4))
    return trainer


@pytest.mark.parametrize(
    ("weights", "classes", "expected_steps", "expected_lr"),
    [
        ("kept", None, 3, 1e-3),  # the weights' own five classes: the config's length and lr
        ("kept", ["a", "b", "c", "d", "e"], 6, 3e-3),  # other classes: a fresh head
        (None, ["a", "b", "c", "d", "e"], 3, 1e-3),  # from scratch: nothing pretrained
    ],
)
def test_a_fresh_head_trains_longer_at_a_higher_learning_rate(
    monkeypatch,
    weights: str | None,
    classes: list[str] | None,
    expected_steps: int,
    expected_lr: float,
) -> None:
    monkeypatch.setitem(PRETRAINED_LOADERS, "kept", lambda model, *args: None)
    monkeypatch.setattr("lit_gradcam.classifier.model.weight_enum", lambda *args: None)
    classifier = ShapeClassifier(
        weights=weights,
        classes=classes,
        lr=1e-3,
        fresh_head_steps=2.0,
        fresh_head_lr=3.0,
        augmentation=None,
    )
    trainer = _fit(classifier, max_steps=3)
    assert trainer.global_step == expected_steps
    assert trainer.lr_scheduler_configs[0].scheduler.total_steps == expected_steps
    assert trainer.optimizers[0].param_groups[0]["max_lr"] == pytest.approx(expected_lr)
    classifier.setup("fit")  # set up again on the same trainer: lengthened once only
    assert trainer.max_steps == expected_steps


def test_fresh_head_steps_below_one_is_refused() -> None:
    with pytest.raises(ConfigError, match=r"model.fresh_head_steps must be >= 1, got 0.5"):
        ShapeClassifier(fresh_head_steps=0.5)


def test_a_fresh_head_lr_not_above_zero_is_refused() -> None:
    with pytest.raises(ConfigError, match=r"model.fresh_head_lr must be > 0, got 0"):
        ShapeClassifier(fresh_head_lr=0)
