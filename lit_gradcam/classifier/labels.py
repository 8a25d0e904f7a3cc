"""What the classifier's targets mean: one class per image (softmax) or several (sigmoid).

A folder whose label files list several classes for some image, or none, is multi-label: the
classifier trains a sigmoid head with binary cross-entropy, and an image holds every class whose
probability reaches a threshold that validation chooses (`LabelThreshold`). Any other folder is
single-label: softmax cross-entropy and the top class, as the course's.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torchmetrics import Metric
from torchmetrics.utilities import dim_zero_cat

from lit_gradcam.errors import ConfigError

#: Thresholds validation chooses from (probabilities at which a class counts as present).
THRESHOLDS = torch.linspace(0.05, 0.95, 19)


def classification_loss(logits: Tensor, targets: Tensor, label_smoothing: float = 0.0) -> Tensor:
    """Cross-entropy for class indices (B,), binary cross-entropy for multi-hot targets (B, C)."""
    if targets.ndim == 2:
        return F.binary_cross_entropy_with_logits(logits.float(), targets.float())
    return F.cross_entropy(logits, targets, label_smoothing=label_smoothing)


def found_classes(
    logits: Tensor, multi_label: bool, threshold: float, empty_images: bool
) -> Tensor:
    """(B, C) bool: the classes an image holds. Multi-label: each class whose probability reaches
    `threshold`, and the most probable one when none does, unless `empty_images` (the training
    folder held images of no class; without them every image holds a class, and one that holds
    none is the no-shape flag's to say). Single-label: the top one."""
    if not multi_label:
        return F.one_hot(logits.argmax(1), logits.shape[1]).bool()
    return _present(logits.float().sigmoid(), threshold, not empty_images)


def _present(probabilities: Tensor, threshold: float | Tensor, at_least_one: bool) -> Tensor:
    """Classes (last dim) whose probability reaches `threshold` (broadcast), and, when
    `at_least_one`, the most probable one."""
    found = probabilities >= threshold
    if not at_least_one:
        return found
    return found | F.one_hot(probabilities.argmax(-1), probabilities.shape[-1]).bool()


def macro_f1(found: Tensor, targets: Tensor) -> Tensor:
    """Macro F1 over classes of bool predictions (..., N, C) against multi-hot targets of the same
    shape; a class with no positive and no prediction counts as 1 (nothing to find, none found).
    """
    targets = targets.bool()
    true_pos = (found & targets).sum(-2).double()
    wrong = (found ^ targets).sum(-2).double()
    return (
        (2 * true_pos / (2 * true_pos + wrong).clamp_min(1))
        .where((2 * true_pos + wrong) > 0, torch.ones_like(true_pos))
        .mean(-1)
    )


class LabelThreshold(Metric):
    """Collects validation probabilities and targets (every rank's) and chooses the threshold
    of `THRESHOLDS` with the best macro F1 (ties: the one nearest 0.5); `compute` returns it
    with the macro F1 and the exact-match share (images whose found classes are all right)
    that it gives. `empty_images`: as `found_classes` reads it."""

    full_state_update = False

    def __init__(self, empty_images: bool, **kwargs: object) -> None:
        super().__init__(**kwargs)
        self.empty_images = empty_images
        self.add_state("probabilities", default=[], dist_reduce_fx="cat")
        self.add_state("targets", default=[], dist_reduce_fx="cat")

    def update(self, logits: Tensor, targets: Tensor) -> None:
        self.probabilities.append(logits.float().sigmoid())
        self.targets.append(targets.float())

    def compute(self) -> dict[str, Tensor]:
        probabilities = dim_zero_cat(self.probabilities)
        targets = dim_zero_cat(self.targets).bool()
        thresholds = THRESHOLDS.to(probabilities.device)
        found = _present(probabilities[None], thresholds[:, None, None], not self.empty_images)
        scores = macro_f1(found, targets[None].expand_as(found))
        best = (scores >= scores.max() - 1e-12).nonzero()[:, 0]
        index = best[(thresholds[best] - 0.5).abs().argmin()]
        return {
            "threshold": thresholds[index],
            "f1": scores[index].float(),
            "exact_match": (found[index] == targets).all(1).float().mean(),
        }


def folder_label_kind(data: object, given: list[str] | None) -> tuple[list[str] | None, bool, bool]:
    """The classifier's `classes`, `multi_label` and `empty_images` for a training datamodule
    that reads a folder (`classes`, `semantic`, `multi_label`, `empty_images`): the folder's
    classes.txt names (None for a course folder, whose classes are the five shapes).
    ConfigError when `given` names others."""
    names = list(data.classes)
    if given is not None and [c.lower() for c in given] != [c.lower() for c in names]:
        raise ConfigError(
            f"model.classes {list(given)} are not the training folder's {names} (its "
            "classes.txt, or the five shapes without one): drop model.classes to take the "
            "folder's"
        )
    return (names if data.semantic else None), bool(data.multi_label), bool(data.empty_images)


def reset_head(model: nn.Module) -> None:
    """A fresh initialisation of a torchvision ResNet's head (`fc`), as torchvision gives one."""
    model.fc.reset_parameters()
