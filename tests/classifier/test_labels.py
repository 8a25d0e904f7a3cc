"""Multi-label classification: the loss, the classes found, the threshold validation chooses,
and a classifier that takes its classes from the folder and keeps them in its checkpoint."""

import itertools

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader, TensorDataset

from lit_gradcam.classifier import ShapeClassifier
from lit_gradcam.classifier.labels import (
    THRESHOLDS,
    LabelThreshold,
    classification_loss,
    folder_label_kind,
    found_classes,
)
from lit_gradcam.classifier.model import PRETRAINED_LOADERS
from lit_gradcam.errors import ConfigError


def _numpy_macro_f1(found: np.ndarray, targets: np.ndarray) -> float:
    scores = []
    for c in range(targets.shape[1]):
        tp = np.sum(found[:, c] & targets[:, c])
        fp = np.sum(found[:, c] & ~targets[:, c])
        fn = np.sum(~found[:, c] & targets[:, c])
        scores.append(1.0 if tp + fp + fn == 0 else 2 * tp / (2 * tp + fp + fn))
    return float(np.mean(scores))


def test_loss_is_cross_entropy_for_indices_and_binary_for_multi_hot() -> None:
    logits = torch.tensor([[2.0, -1.0, 0.5]])
    single = classification_loss(logits, torch.tensor([0]))
    expected = -torch.log_softmax(logits, 1)[0, 0]
    torch.testing.assert_close(single, expected)
    multi = classification_loss(logits, torch.tensor([[1.0, 0.0, 1.0]]))
    p = torch.sigmoid(logits[0])
    bce = -(torch.log(p[0]) + torch.log(1 - p[1]) + torch.log(p[2])) / 3
    torch.testing.assert_close(multi, bce)


def test_found_classes_read_a_threshold_and_keep_the_top_class_unless_images_may_be_empty() -> None:
    logits = torch.logit(torch.tensor([[0.9, 0.6, 0.2], [0.3, 0.1, 0.2]]))
    assert found_classes(logits, True, 0.5, False).tolist() == [
        [True, True, False],
        [True, False, False],
    ]
    assert found_classes(logits, True, 0.95, False).tolist() == [
        [True, False, False],
        [True, False, False],
    ]
    assert found_classes(logits, True, 0.5, True).tolist() == [
        [True, True, False],
        [False, False, False],
    ]
    assert found_classes(logits, False, 0.0, False).tolist() == [
        [True, False, False],
        [True, False, False],
    ]


@pytest.mark.parametrize("empty_images", [False, True])
def test_threshold_is_the_best_macro_f1_of_the_grid_over_every_batch(empty_images: bool) -> None:
    generator = torch.Generator().manual_seed(0)
    targets = torch.rand(200, 4, generator=generator) < 0.4
    if empty_images:
        targets[::7] = False  # images of no class
    noise = torch.randn(200, 4, generator=generator)
    logits = (targets.float() * 2 - 1) * 1.2 + noise
    chooser = LabelThreshold(empty_images)
    for part in range(4):  # batches accumulate
        rows = slice(part * 50, (part + 1) * 50)
        chooser.update(logits[rows], targets[rows].float())
    chosen = chooser.compute()
    probabilities = torch.sigmoid(logits).numpy()
    top = np.eye(4, dtype=bool)[probabilities.argmax(1)]
    if empty_images:  # no class is kept for lack of another
        top[:] = False
    scores = [
        _numpy_macro_f1((probabilities >= t) | top, targets.numpy()) for t in THRESHOLDS.tolist()
    ]
    best = max(scores)
    assert float(chosen["f1"]) == pytest.approx(best, abs=1e-6)
    assert scores[THRESHOLDS.tolist().index(pytest.approx(float(chosen["threshold"])))] == best
    found = (probabilities >= float(chosen["threshold"])) | top
    exact = np.mean(np.all(found == targets.numpy(), 1))
    assert float(chosen["exact_match"]) == pytest.approx(exact)


class _Folder:
    """The attributes a training datamodule exposes about its folder."""

    def __init__(self, classes, semantic: bool, multi_label: bool, empty: bool = False) -> None:
        self.classes, self.semantic, self.multi_label = classes, semantic, multi_label
        self.empty_images = empty


def _multi_label_batches() -> tuple[DataLoader, torch.Tensor, torch.Tensor]:
    """Images whose channel means say which of three classes they hold."""
    torch.manual_seed(0)
    targets = torch.tensor(list(itertools.product([0.0, 1.0], repeat=3))[1:] * 2)
    images = torch.randn(len(targets), 3, 32, 32) * 0.1 + (targets * 2 - 1)[:, :, None, None]
    masks = torch.zeros(len(targets), 32, 32, dtype=torch.uint8)
    return (
        DataLoader(TensorDataset(images, targets, masks), batch_size=len(targets)),
        images,
        targets,
    )


def test_a_multi_label_folder_trains_a_sigmoid_head_and_its_checkpoint_keeps_the_classes(
    make_trainer, tmp_path
) -> None:
    loader, images, targets = _multi_label_batches()
    model = ShapeClassifier(lr=1e-2, augmentation=None)
    trainer = make_trainer(max_steps=80, limit_val_batches=1.0, check_val_every_n_epoch=80)
    model._set_label_kind(["Hexagon", "Cross", "Arrow"], True, False)  # as a folder sets it
    trainer.fit(model, train_dataloaders=loader, val_dataloaders=loader)
    assert model.class_names == ("Hexagon", "Cross", "Arrow")
    model.eval()
    with torch.no_grad():
        found = model.found_classes(model(images))
    assert torch.equal(found, targets.bool())
    assert trainer.callback_metrics["val/acc"] == 1.0
    path = tmp_path / "multi.ckpt"
    trainer.save_checkpoint(path)
    restored = ShapeClassifier()  # the five shapes until the checkpoint says otherwise
    checkpoint = torch.load(path, weights_only=False)
    restored.on_load_checkpoint(checkpoint)
    restored.load_state_dict(checkpoint["state_dict"])
    assert restored.class_names == ("Hexagon", "Cross", "Arrow") and restored.hparams.multi_label
    assert float(restored.label_threshold) == float(model.label_threshold)
    restored.eval()
    with torch.no_grad():
        assert torch.equal(restored.found_classes(restored(images)), targets.bool())


def test_a_multi_label_decision_reads_an_image_and_its_mirror_alike() -> None:
    """Multi-label decisions average the mirror image's logits in, so mirroring an image changes
    nothing the classifier decides; single-label decisions stay the network's own logits."""
    torch.manual_seed(0)
    images = torch.randn(3, 3, 32, 48)
    multi = ShapeClassifier(augmentation=None, stages=2).eval()
    multi._set_label_kind(["Hexagon", "Cross", "Arrow"], multi_label=True, empty_images=False)
    with torch.no_grad():
        plain, mirrored = multi(images), multi(images.flip(-1))
        logits, found = multi.classify(images)
        torch.testing.assert_close(logits, multi.classify(images.flip(-1))[0])
    assert not torch.allclose(plain, mirrored)  # the network alone is not mirror-symmetric
    assert torch.equal(found, multi.found_classes(logits))
    single = ShapeClassifier(augmentation=None, stages=2).eval()
    with torch.no_grad():
        torch.testing.assert_close(single.classify(images)[0], single(images))


def test_classes_that_disagree_with_the_folder_are_refused() -> None:
    folder = _Folder(("Hexagon", "Cross"), semantic=True, multi_label=False)
    assert folder_label_kind(folder, None) == (["Hexagon", "Cross"], False, False)
    assert folder_label_kind(folder, ["hexagon", "cross"]) == (["Hexagon", "Cross"], False, False)
    negatives = _Folder(("Hexagon", "Cross"), semantic=True, multi_label=True, empty=True)
    assert folder_label_kind(negatives, None) == (["Hexagon", "Cross"], True, True)
    with pytest.raises(ConfigError, match="not the training folder's"):
        folder_label_kind(folder, ["cross", "hexagon"])
    course = _Folder(("circle", "square", "triangle", "star", "diamond"), False, False)
    assert folder_label_kind(course, None) == (None, False, False)


@pytest.mark.parametrize("other_classes", [False, True])
def test_pretrained_trunk_loads_and_a_head_of_other_classes_starts_afresh(
    monkeypatch, other_classes: bool
) -> None:
    def ones(model, *args) -> None:
        with torch.no_grad():
            for parameter in model.parameters():
                parameter.fill_(1.0)

    monkeypatch.setitem(PRETRAINED_LOADERS, "ones", ones)
    monkeypatch.setattr("lit_gradcam.classifier.model.weight_enum", lambda *args: None)
    names = ["a", "b", "c", "d", "e"] if other_classes else None
    model = ShapeClassifier(weights="ones", classes=names)
    model.setup("fit")
    assert torch.all(model.model.conv1.weight == 1)
    head_is_pretrained = bool(torch.all(model.model.fc.weight == 1))
    assert head_is_pretrained is not other_classes
