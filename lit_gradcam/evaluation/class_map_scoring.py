"""`ClassMapScoring`: the evaluation's metrics on folders of several classes and objects.

Per (segmenter, strategy) the class maps' IoU per class and mIoU, and how the object prompts
fell (`SemanticMetrics`); for the classifier, per-class F1 of the classes it found (multi-label)
or per-class accuracy (one class per image). Every state is a torchmetrics state, so all of it
syncs under DDP.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from torch import Tensor, nn
from torchmetrics import SumMetric
from torchmetrics.classification import MulticlassAccuracy, MultilabelF1Score

from lit_gradcam.errors import ConfigError
from lit_gradcam.evaluation.semantic_metrics import SemanticMetrics
from lit_gradcam.method.objects import ClassMapOutput

#: Columns of the class-map results table, before one IoU column per class.
CLASS_MAP_COLUMNS = ("miou", "object_hit_rate", "stray_point_rate", "iou_background")


class ClassMapScoring(nn.Module):
    """The metrics of every (segmenter, strategy) key, the classifier's, and the image count."""

    def __init__(self, keys: Sequence[str], classes: Sequence[str], multi_label: bool) -> None:
        super().__init__()
        self.classes, self.multi_label = tuple(classes), multi_label
        self.keys = list(keys)
        self.per_key = nn.ModuleList(SemanticMetrics(self.classes) for _ in self.keys)
        count = len(self.classes)
        self.classification = (
            MultilabelF1Score(count, average="none")
            if multi_label
            else MulticlassAccuracy(count, average="none")
        )
        self.images = SumMetric()

    def update(self, output: ClassMapOutput, labels: Tensor, gt_maps: Tensor) -> None:
        self.images.update(len(labels))
        if self.multi_label:
            self.classification.update(output.found.float(), labels.long())
        else:
            self.classification.update(output.logits, labels)
        for key, metrics in zip(self.keys, self.per_key, strict=True):
            result = output.results[key]
            metrics.update(result.class_maps, gt_maps, result.prompts.points, result.point_classes)

    def reset(self) -> None:
        for metric in [*self.per_key, self.classification, self.images]:
            metric.reset()

    def results(
        self, prefix: str, uses_ground_truth: dict[str, bool]
    ) -> tuple[list[dict[str, Any]], dict[str, float], dict[str, Any]]:
        """Rows per key, logged scalars (keyed under `prefix`) and what else results.json
        holds: the classifier's per-class score and macro mean, the image and object counts."""
        rows, scalars = [], {}
        for key, metrics in zip(self.keys, self.per_key, strict=True):
            segmenter, strategy = key.split("/", 1)
            values = {n: None if math.isnan(v) else v for n, v in metrics.compute().items()}
            rows.append(
                {
                    "segmenter": segmenter,
                    "strategy": strategy,
                    "uses_ground_truth": uses_ground_truth[strategy],
                    **values,
                }
            )
            scalars.update({f"{prefix}/{key}/{n}": v for n, v in values.items() if v is not None})
        per_class = self.classification.compute()
        name = "class_f1" if self.multi_label else "class_acc"
        by_class = {c: float(per_class[i]) for i, c in enumerate(self.classes)}
        scalars.update({f"{prefix}/{name}/{c}": v for c, v in by_class.items()})
        macro = float(per_class.mean())
        scalars[f"{prefix}/{name}_macro"] = macro
        extra = {
            "classes": list(self.classes),
            "multi_label": self.multi_label,
            name: by_class,
            f"{name}_macro": macro,
            "num_images": int(self.images.compute()),
            "num_objects": self.per_key[0].num_objects if self.per_key else 0,
        }
        return rows, scalars, extra

    def columns(self) -> tuple[str, ...]:
        """The results table's columns: `CLASS_MAP_COLUMNS`, then each class's IoU."""
        return CLASS_MAP_COLUMNS + self.per_key[0].keys[1:] if self.per_key else CLASS_MAP_COLUMNS


def require_same_classes(model: tuple[str, ...], folder: tuple[str, ...]) -> None:
    """The classifier scores the folder's classes: the same names, in the same order."""
    if [c.lower() for c in model] != [c.lower() for c in folder]:
        raise ConfigError(
            f"the classifier's classes {list(model)} are not the folder's {list(folder)} (its "
            "classes.txt): test a checkpoint trained on this folder's classes"
        )
