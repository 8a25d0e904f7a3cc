"""`ShapeClassifier`: the torchvision ResNet whose Grad-CAM heatmaps drive every prompt.

It learns from labels only: the masks in its batches are never read here.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence

import lightning as L
import torch
from jsonargparse import lazy_instance
from lightning.pytorch.utilities import rank_zero_info
from torch import Tensor, nn
from torch.nn import functional as F
from torchmetrics import MeanMetric
from torchmetrics.classification import MulticlassAccuracy

from lit_gradcam.classifier.augmentation import TrainAugmentation
from lit_gradcam.classifier.backbones import STAGES, build_resnet, weight_enum
from lit_gradcam.classifier.labels import (
    LabelThreshold,
    classification_loss,
    folder_label_kind,
    found_classes,
    reset_head,
)
from lit_gradcam.classifier.optimization import adamw, with_one_cycle
from lit_gradcam.classifier.schedule import (
    check_fresh_head,
    fresh_head_lr,
    lengthen_fresh_head_run,
)
from lit_gradcam.data import CLASSES
from lit_gradcam.errors import ConfigError, require_at_least, require_steps

#: The training jitter by default; lazy, so the CLI shows and saves its init arguments.
DEFAULT_AUGMENTATION = lazy_instance(TrainAugmentation)
#: What checkpoints of earlier versions kept of the no-shape flag inside the classifier (its
#: presence net, now `NoShapeFlag`'s, and thresholds): dropped when one loads.
EARLIER_FLAG_KEYS = (
    "presence.",
    "no_shape_presence_threshold",
    "no_shape_threshold",
    "no_shape_local_threshold",
)
#: The scales at which a multi-label classifier reads each image (and its mirror image) to
#: decide which classes it holds. Chosen on the validation split of a generated course-size
#: folder of seven shape-bank classes, 1-3 objects per image (`benchmarks/decision_views.py`,
#: `results/decision_views_val.json`).
MULTI_LABEL_VIEW_SCALES = (1.0, 1.25)
#: Loaders of the `weights` torchvision lacks, by name, given (model, arch, stem_maxpool, stages).
#: Their modules train this classifier, so they sit above it and fill this in when imported
#: (`lit_gradcam.classifier.shapes_weights` adds ``shapes``; the package imports it).
PRETRAINED_LOADERS: dict[str, Callable[[nn.Module, str, bool, int], None]] = {}


def view_mean_logits(
    network: Callable[[Tensor], Tensor], images: Tensor, scales: Sequence[float], mirror: bool
) -> Tensor:
    """Mean logits (B, C) of `network` over `images` (B, 3, H, W) resized by each of `scales`
    (bilinear), and over their mirror images too when `mirror`."""
    batch = torch.cat([images, images.flip(-1)]) if mirror else images
    views = [
        network(batch if scale == 1 else F.interpolate(batch, scale_factor=scale, mode="bilinear"))
        for scale in scales
    ]
    return torch.cat(views).view(-1, len(images), views[0].shape[-1]).mean(0)


class ShapeClassifier(L.LightningModule):
    """Classifies the shapes in an image; its backbone (`self.model`) is what Grad-CAM reads.

    Args:
        classes: class names in label-index order; None: the training folder's (its
            `classes.txt`), the five of `lit_gradcam.data.CLASSES` for a course folder. Set when
            `fit` starts and saved in the checkpoint, so test and predict name them; a list
            given here must match the training folder's.
        multi_label: whether an image may hold several classes (a sigmoid head, and a class
            threshold chosen on validation) or exactly one (softmax). The training folder
            decides when `fit` starts (multi-label when any label file lists several classes,
            or none); saved in the checkpoint.
        empty_images: whether an image may hold none of the classes (a multi-label folder
            some of whose label files are empty): a multi-label image then holds only the
            classes over the threshold, else at least its most probable one. The training
            folder decides when `fit` starts; saved in the checkpoint.
        arch: torchvision ResNet name.
        weights: what `fit` starts from: a torchvision weight enum name (e.g.
            ``IMAGENET1K_V1``), ``shapes`` (`lit_gradcam.classifier.shapes_weights`) or None
            for scratch.
            They are loaded in `setup("fit")`, so testing or predicting from a checkpoint
            never fetches them.
        lr, weight_decay: AdamW settings (the reference report's defaults).
        one_cycle: use a one-cycle schedule peaking at `lr` over the trainer's whole run
            (`max_steps`), which makes from-scratch training stable.
        augmentation: label-preserving jitter of each training batch (images only), or None.
        label_smoothing: cross-entropy label smoothing (keeps a small-data model from
            growing over-confident logits on the images it has memorised).
        stem_maxpool: keep torchvision's stem max-pool (see `backbones.build_resnet`).
        stages: how many of the ResNet's four residual stages to keep (see
            `backbones.build_resnet`); torchvision's weights load into the stages kept.
        augmentation_ramp: (start, end) fractions of the run (`max_steps`) over which the
            augmentation's strength rises from mirror-only to full: a from-scratch network
            learns the shapes from plain images first, then the jitter makes it robust, in one
            run. (0, 0): full strength from the first step.
        channels_last: run the network in channels-last memory format; None: when the trainer
            trains in mixed precision, where it is the faster layout on CPU and CUDA alike.
        fresh_head_steps: how many times the trainer's `max_steps` `fit` trains when the
            pretrained `weights` have no head for the folder's classes (`schedule`).
        fresh_head_lr: how many times `lr` such a fit trains at.

    The checkpoint also remembers the training images' size (`input_size`), at which `predict`
    classifies.
    """

    def __init__(
        self,
        classes: list[str] | None = None,
        multi_label: bool = False,
        empty_images: bool = False,
        arch: str = "resnet18",
        weights: str | None = None,
        lr: float = 2e-3,
        weight_decay: float = 0.05,
        one_cycle: bool = True,
        augmentation: TrainAugmentation | None = DEFAULT_AUGMENTATION,
        label_smoothing: float = 0.0,
        stem_maxpool: bool = True,
        stages: int = STAGES,
        augmentation_ramp: tuple[float, float] = (0.0, 0.0),
        channels_last: bool | None = None,
        fresh_head_steps: float = 1.0,
        fresh_head_lr: float = 1.0,
    ) -> None:
        super().__init__()
        if classes is not None and len(classes) < 2:
            raise ConfigError(f"model.classes must name at least two classes, got {classes}")
        require_at_least("model", 0, weight_decay=weight_decay)
        check_fresh_head(fresh_head_steps, fresh_head_lr)
        if lr <= 0 or not 0 <= label_smoothing < 1:
            raise ConfigError(
                "model.lr must be > 0 and model.label_smoothing in [0, 1), got "
                f"{lr} and {label_smoothing}"
            )
        start, end = augmentation_ramp
        if not 0 <= start <= end <= 1:
            raise ConfigError(
                "model.augmentation_ramp must be (start, end) fractions of the run with "
                f"0 <= start <= end <= 1, got {augmentation_ramp}"
            )
        # the run's config.yaml records the augmentation; a checkpoint needs none to predict
        self.save_hyperparameters(ignore=["augmentation"])
        self.augmentation = augmentation
        weight_enum(arch, weights)  # a bad name fails now, not when fit starts
        self.model = self._build_backbone()
        self._pretrained_loaded = False
        self._channels_last = False
        self._build_metrics()
        # (height, width) of the training images; (0, 0) until the first training step
        self.register_buffer("input_size", torch.zeros(2, dtype=torch.int64))
        # a multi-label head's class threshold, chosen at each validation
        self.register_buffer("label_threshold", torch.tensor(0.5))
        self._size_recorded = False

    @property
    def class_names(self) -> tuple[str, ...]:
        """The class names, in label-index order."""
        return tuple(self.hparams.classes or CLASSES)

    def found_classes(self, logits: Tensor) -> Tensor:
        """(B, C) bool: the classes each image holds, as this classifier reads its logits."""
        hp = self.hparams
        return found_classes(logits, hp.multi_label, float(self.label_threshold), hp.empty_images)

    def decision_logits(self, images: Tensor) -> Tensor:
        """The logits (B, C) every decision about `images` reads (validation, its threshold,
        test, predict, class maps). Multi-label: `view_mean_logits` of the images and their
        mirror images at `MULTI_LABEL_VIEW_SCALES`, since each class's presence is a threshold
        on its own sigmoid, which more views steady. Single-label: the images' own logits, as
        always."""
        if not self.hparams.multi_label:
            return self(images)
        return view_mean_logits(self, images, MULTI_LABEL_VIEW_SCALES, mirror=True)

    def classify(self, images: Tensor) -> tuple[Tensor, Tensor]:
        """`decision_logits` (B, C) as float32, and the classes (B, C) bool they find."""
        with torch.no_grad():
            logits = self.decision_logits(images).float()
        return logits, self.found_classes(logits)

    def _build_metrics(self) -> None:
        """Accuracy: of the top class (single-label), or the share of images whose found classes
        are exactly their classes (multi-label); and the multi-label threshold's chooser."""
        if self.hparams.multi_label:
            self.val_acc, self.test_acc = MeanMetric(), MeanMetric()
            self.val_threshold = LabelThreshold(self.hparams.empty_images)
        else:
            count = len(self.class_names)
            self.val_acc = MulticlassAccuracy(count, average="micro")
            self.test_acc = MulticlassAccuracy(count, average="micro")
            self.val_threshold = None

    def setup(self, stage: str) -> None:
        """Take the training folder's classes, then load the pretrained `weights` when fitting
        starts, before Lightning restores any checkpoint being resumed (other stages load a
        trained checkpoint, so they never fetch weights they would overwrite); a fit whose head
        starts afresh trains `fresh_head_steps` times longer, at `fresh_head_lr` times `lr`."""
        data = getattr(self._trainer, "datamodule", None) if stage == "fit" else None
        if getattr(data, "classes", None) is not None:
            self._set_label_kind(*folder_label_kind(data, self.hparams.classes))
        if stage == "fit" and self.hparams.weights is not None and not self._pretrained_loaded:
            hp = self.hparams
            loader = PRETRAINED_LOADERS.get(hp.weights)  # None for torchvision's weights
            weights = None if loader else hp.weights
            pretrained = self._build_backbone(weights)
            if loader is not None:
                loader(pretrained, hp.arch, hp.stem_maxpool, hp.stages)
            if self.class_names != CLASSES:  # a head of other classes starts afresh
                reset_head(pretrained)
            self.model.load_state_dict(pretrained.state_dict())
            self._pretrained_loaded = True  # a second `fit` goes on from where the first ended
        if stage == "fit" and self._fresh_head and self._trainer:
            lengthen_fresh_head_run(self._trainer, self.hparams.fresh_head_steps)
        channels_last = self.hparams.channels_last
        if channels_last is None:
            channels_last = "mixed" in str(self.trainer.precision) if self._trainer else False
        self._channels_last = channels_last
        self._apply_memory_format()

    @property
    def _fresh_head(self) -> bool:
        """Whether training starts from pretrained `weights` that have no head for these
        classes (torchvision's never do; `weights: shapes` has the five shapes')."""
        weights = self.hparams.weights
        fresh = weights not in PRETRAINED_LOADERS or self.class_names != CLASSES
        return weights is not None and fresh

    def _set_label_kind(
        self, classes: list[str] | None, multi_label: bool, empty_images: bool
    ) -> None:
        """Set `classes`, `multi_label` and `empty_images`, rebuilding the network if the first
        two change, and the metrics if any does."""
        hp = self.hparams
        if (hp.classes, hp.multi_label, hp.empty_images) == (classes, multi_label, empty_images):
            return
        if (hp.classes, hp.multi_label) != (classes, multi_label):
            hp.classes, hp.multi_label = classes, multi_label
            self.model = self._build_backbone()
            self._apply_memory_format()
        hp.empty_images = empty_images
        self._build_metrics()

    def _build_backbone(self, weights: str | None = None) -> nn.Module:
        """A ResNet as the hyper-parameters describe it, with torchvision's `weights` or none."""
        hp = self.hparams
        return build_resnet(hp.arch, len(self.class_names), weights, hp.stem_maxpool, hp.stages)

    def _apply_memory_format(self) -> None:
        memory_format = torch.channels_last if self._channels_last else torch.contiguous_format
        self.model.to(memory_format=memory_format)

    def forward(self, images: Tensor) -> Tensor:
        if self._channels_last:
            images = images.contiguous(memory_format=torch.channels_last)
        return self.model(images)

    def augmentation_strength(self) -> float:
        """Where the augmentation ramp stands at the current step: 0 before, 1 after (and 1
        outside a trainer's run)."""
        start, end = self.hparams.augmentation_ramp
        if end == 0 or self._trainer is None:  # no ramp: no per-step look at the run's length
            return 1.0
        progress = self.global_step / max(self.trainer.estimated_stepping_batches, 1)
        if progress >= end:
            return 1.0
        if progress <= start:
            return 0.0
        return (progress - start) / (end - start)

    def training_step(self, batch: tuple[Tensor, Tensor, Tensor], batch_idx: int) -> Tensor:
        images, labels, _ = batch  # the masks are for segmenters and metrics, never the ResNet
        if not self._size_recorded:
            self.input_size.copy_(torch.tensor(images.shape[-2:]))
            self._size_recorded = True
        if self.augmentation is not None:
            images = self.augmentation(images, self.augmentation_strength())
        loss = classification_loss(self(images), labels, self.hparams.label_smoothing)
        self.log("train/loss", loss, prog_bar=True)
        return loss

    def validation_step(self, batch: tuple[Tensor, Tensor, Tensor], batch_idx: int) -> None:
        images, labels, _ = batch
        logits = self.decision_logits(images)
        loss = classification_loss(logits, labels)
        self.log("val/loss", loss, prog_bar=True, sync_dist=True)
        if self.val_threshold is not None:
            self.val_threshold.update(logits, labels)  # accuracy once the threshold is chosen
            return
        self.val_acc(logits, labels)
        self.log("val/acc", self.val_acc, prog_bar=True)

    def on_validation_epoch_end(self) -> None:
        """Multi-label: choose the class threshold on this validation (every rank's images),
        then log the accuracy and macro F1 it gives."""
        if self.val_threshold is None or not self.val_threshold.update_called:
            return
        chosen = self.val_threshold.compute()
        self.val_threshold.reset()
        self.label_threshold.fill_(chosen["threshold"])
        self.log("val/acc", chosen["exact_match"], prog_bar=True)
        self.log("val/f1", chosen["f1"])
        self.log("val/threshold", chosen["threshold"])

    def on_load_checkpoint(self, checkpoint: dict) -> None:
        """Load checkpoints of earlier versions too: one saved before the input size was kept
        loads with it unknown; what one kept of the no-shape flag (now `NoShapeFlag`'s) is
        dropped. One with another number of residual stages than the config's rebuilds the
        backbone as it was saved, and says so: the weights decide what the network is."""
        state = checkpoint["state_dict"]
        state.setdefault("input_size", torch.zeros(2, dtype=torch.int64))
        state.setdefault("label_threshold", torch.tensor(0.5))
        hyper = checkpoint.get("hyper_parameters", {})
        self._set_label_kind(
            hyper.get("classes"),
            bool(hyper.get("multi_label", False)),
            bool(hyper.get("empty_images", False)),
        )
        for key in [key for key in state if key.startswith(EARLIER_FLAG_KEYS)]:
            del state[key]
        found = [re.match(r"model\.layer(\d)\.", key) for key in state]
        saved = max((int(match.group(1)) for match in found if match), default=None)
        if saved is not None and saved != self.hparams.stages:
            rank_zero_info(
                f"The checkpoint holds a ResNet with {saved} residual stages, the config's "
                f"model.stages is {self.hparams.stages}: loading it as it was saved."
            )
            self.hparams.stages = saved
            self.model = self._build_backbone()
            self._apply_memory_format()

    def test_step(self, batch: tuple[Tensor, Tensor, Tensor], batch_idx: int) -> None:
        images, labels, _ = batch
        logits = self.decision_logits(images)
        if self.hparams.multi_label:
            self.test_acc.update((self.found_classes(logits) == labels.bool()).all(1).float())
        else:
            self.test_acc.update(logits, labels)
        self.log("test/acc", self.test_acc)

    def predict_step(self, batch: dict, batch_idx: int) -> Tensor:
        """`decision_logits` (B, C) of a predict batch (see `ImageFolder`), as float32: the
        prediction writer reads a class-map classifier's found classes from them (computed once
        per image), and turns them, Grad-CAM and the segmenter into masks."""
        with torch.no_grad():
            return self.decision_logits(batch["image"]).float()

    def configure_optimizers(self):  # noqa: ANN201 - Lightning's own union type
        lr = self.hparams.lr
        if self._fresh_head:
            lr = fresh_head_lr(lr, self.hparams.fresh_head_lr)
        optimizer = adamw(self, lr, self.hparams.weight_decay)
        if not self.hparams.one_cycle:
            return optimizer
        steps = require_steps(self.trainer.estimated_stepping_batches)
        return with_one_cycle(optimizer, lr, steps)
