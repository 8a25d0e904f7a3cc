"""`ShapeClassifier`: the torchvision ResNet whose Grad-CAM heatmaps drive every prompt."""

from __future__ import annotations

import lightning as L
import torch
import torch.nn.functional as F
import torchvision
from torch import Tensor, nn
from torchmetrics.classification import MulticlassAccuracy

ARCHITECTURES = ("resnet18", "resnet34", "resnet50")


class WeightsUnavailableError(RuntimeError):
    """Pretrained weights were asked for but could not be fetched (no network, say)."""


def build_resnet(arch: str, num_classes: int, weights: str | None) -> nn.Module:
    """A torchvision ResNet with a `num_classes` head; `weights` is a torchvision enum name."""
    if arch not in ARCHITECTURES:
        raise ValueError(f"model.arch must be one of {ARCHITECTURES}, got {arch!r}")
    weight_enum = None
    if weights is not None:
        enum_class = torchvision.models.get_model_weights(arch)
        try:
            weight_enum = enum_class[weights]
        except KeyError:
            valid = [w.name for w in enum_class]
            raise ValueError(
                f"model.weights: {weights!r} is not a weight of {arch}; valid: {valid} or null"
            ) from None
    try:
        model = torchvision.models.get_model(arch, weights=weight_enum)
    except OSError as error:  # urllib's URLError is an OSError
        raise WeightsUnavailableError(
            f"Could not download {arch} weights {weights} ({weight_enum.url}): {error}. "
            f"Put the file in {torch.hub.get_dir()}/checkpoints/ or use `model.weights: null` "
            "to train from scratch offline."
        ) from error
    model.fc = nn.Linear(model.fc.in_features, num_classes)
    return model


class ShapeClassifier(L.LightningModule):
    """Classifies the shape in an image; its backbone (`self.model`) is what Grad-CAM reads.

    Args:
        num_classes: number of shape classes (linked from the datamodule by the CLI).
        arch: torchvision ResNet name.
        weights: torchvision weight enum name (e.g. ``IMAGENET1K_V1``) or None for scratch.
        lr, weight_decay: AdamW settings (the homework's defaults).
        one_cycle: use a one-cycle schedule peaking at `lr` (stable from-scratch training).
        hflip: mirror half of each training batch (images and masks stay aligned); this also
            keeps later heatmaps left-right symmetric.
    """

    def __init__(
        self,
        num_classes: int = 5,
        arch: str = "resnet18",
        weights: str | None = None,
        lr: float = 2e-3,
        weight_decay: float = 0.05,
        one_cycle: bool = True,
        hflip: bool = True,
    ) -> None:
        super().__init__()
        self.save_hyperparameters()
        self.model = build_resnet(arch, num_classes, weights)
        self.val_acc = MulticlassAccuracy(num_classes, average="micro")
        self.test_acc = MulticlassAccuracy(num_classes, average="micro")

    def forward(self, images: Tensor) -> Tensor:
        return self.model(images)

    def training_step(self, batch: tuple[Tensor, Tensor, Tensor], batch_idx: int) -> Tensor:
        images, labels, _ = batch
        if self.hparams.hflip:
            flip = torch.rand(images.shape[0], device=images.device) < 0.5
            images = torch.where(flip[:, None, None, None], images.flip(-1), images)
        loss = F.cross_entropy(self(images), labels)
        self.log("train/loss", loss, prog_bar=True)
        return loss

    def validation_step(self, batch: tuple[Tensor, Tensor, Tensor], batch_idx: int) -> None:
        images, labels, _ = batch
        logits = self(images)
        self.log("val/loss", F.cross_entropy(logits, labels), prog_bar=True, sync_dist=True)
        self.val_acc(logits, labels)
        self.log("val/acc", self.val_acc, prog_bar=True)

    def test_step(self, batch: tuple[Tensor, Tensor, Tensor], batch_idx: int) -> None:
        images, labels, _ = batch
        self.test_acc(self(images), labels)
        self.log("test/acc", self.test_acc)

    def predict_step(self, batch: dict, batch_idx: int) -> Tensor:
        """Class probabilities of a predict batch (see `ImageFolder`); the prediction writer
        turns them, Grad-CAM and the segmenter into masks."""
        return self(batch["image"]).softmax(-1)

    def configure_optimizers(self):  # noqa: ANN201 - Lightning's own union type
        optimizer = torch.optim.AdamW(
            self.parameters(), lr=self.hparams.lr, weight_decay=self.hparams.weight_decay
        )
        if not self.hparams.one_cycle:
            return optimizer
        scheduler = torch.optim.lr_scheduler.OneCycleLR(
            optimizer,
            max_lr=self.hparams.lr,
            total_steps=self.trainer.estimated_stepping_batches,
        )
        return {
            "optimizer": optimizer,
            "lr_scheduler": {"scheduler": scheduler, "interval": "step"},
        }
