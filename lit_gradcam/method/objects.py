"""The method on images of several classes and objects: a class map per image.

For each class the classifier finds in an image, its CAM; every strategy segments what each
class's CAM shows (one object, or one per hot component for per-object strategies) on the
image's shared embedding; the class masks are merged into one class map per image.

Where two classes' masks overlap, the pixel goes to the class whose CAM is hotter there: the
segmenter's masks say where an object is, not which class it is, and the CAM is the only
per-pixel class evidence the method has (ties: the class listed first).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from lit_gradcam.cam.heatmaps import compute_heatmaps, resize_heatmaps
from lit_gradcam.cam.spec import CamSpec
from lit_gradcam.imaging import denormalize_to_uint8
from lit_gradcam.method.results import cat_prompts
from lit_gradcam.prompt_types import FOREGROUND, PAD_LABEL, Prompts
from lit_gradcam.prompts.base import PromptStrategy
from lit_gradcam.prompts.objects import no_objects
from lit_gradcam.segmenters.base import Segmenter


@dataclass
class ClassMapResult:
    """What one (segmenter, strategy) pair produced for a batch: class maps (B, H, W) uint8 (0
    background, i = class i - 1 of the classifier) and the foreground points it prompted,
    with the class map value each was placed for (`point_classes` (B, K), 0 for padding)."""

    class_maps: Tensor
    prompts: Prompts
    point_classes: Tensor

    def head(self, n: int) -> ClassMapResult:
        prompts = Prompts(self.prompts.points[:n], self.prompts.labels[:n])
        return ClassMapResult(self.class_maps[:n], prompts, self.point_classes[:n])

    def to(self, device: torch.device | str) -> ClassMapResult:
        return ClassMapResult(
            self.class_maps.to(device), self.prompts.to(device), self.point_classes.to(device)
        )

    @staticmethod
    def cat(parts: Sequence[ClassMapResult]) -> ClassMapResult:
        width = max(p.point_classes.shape[1] for p in parts)
        classes = [
            nn.functional.pad(p.point_classes, (0, width - p.point_classes.shape[1])) for p in parts
        ]
        return ClassMapResult(
            torch.cat([p.class_maps for p in parts]),
            cat_prompts([p.prompts for p in parts]),
            torch.cat(classes),
        )


@dataclass
class ClassMapOutput:
    """A batch through the method: results keyed ``"{segmenter}/{strategy}"``; `found` (B, C)
    the classes the classifier found; `heatmaps` (B, H, W) per pixel the hottest of the image's
    found classes' CAMs (of the method's default CAM), for figures."""

    images_uint8: Tensor
    logits: Tensor
    found: Tensor
    heatmaps: Tensor
    results: dict[str, ClassMapResult]
    gt_maps: Tensor | None = None

    @property
    def batch_size(self) -> int:
        return self.images_uint8.shape[0]

    def head(self, n: int) -> ClassMapOutput:
        return ClassMapOutput(
            self.images_uint8[:n],
            self.logits[:n],
            self.found[:n],
            self.heatmaps[:n],
            {key: result.head(n) for key, result in self.results.items()},
            None if self.gt_maps is None else self.gt_maps[:n],
        )

    def to(self, device: torch.device | str) -> ClassMapOutput:
        return ClassMapOutput(
            self.images_uint8.to(device),
            self.logits.to(device),
            self.found.to(device),
            self.heatmaps.to(device),
            {key: result.to(device) for key, result in self.results.items()},
            None if self.gt_maps is None else self.gt_maps.to(device),
        )

    @staticmethod
    def cat(parts: Sequence[ClassMapOutput]) -> ClassMapOutput:
        gts = [p.gt_maps for p in parts]
        return ClassMapOutput(
            torch.cat([p.images_uint8 for p in parts]),
            torch.cat([p.logits for p in parts]),
            torch.cat([p.found for p in parts]),
            torch.cat([p.heatmaps for p in parts]),
            {key: ClassMapResult.cat([p.results[key] for p in parts]) for key in parts[0].results},
            None if any(g is None for g in gts) else torch.cat(gts),
        )


def merge_class_maps(
    masks: Tensor, heatmaps: Tensor, image: Tensor, cls: Tensor, batch: int, num_classes: int
) -> Tensor:
    """Class maps (B, H, W) uint8 from one mask and heatmap (P, H, W) per (image, class) pair:
    a pixel takes the class (value class + 1) of the hottest heatmap among the masks covering
    it, 0 where none does."""
    height, width = masks.shape[-2:]
    scores = heatmaps.new_full((batch, num_classes, height, width), -1.0, dtype=torch.float32)
    scores[image, cls] = torch.where(masks.bool(), heatmaps.float(), -1.0)
    best, index = scores.max(1)
    return torch.where(best >= 0, index + 1, 0).to(torch.uint8)


def per_image_points(
    points: Tensor, valid: Tensor, image: Tensor, cls: Tensor, batch: int
) -> tuple[Prompts, Tensor]:
    """Object points (P, M, 2) of (image, class) pairs, gathered per image: foreground prompts
    (B, K) padded with -1, and the class map value (class + 1) of each point (0: padding)."""
    slots = points.shape[1]
    keep = valid.flatten()
    owner = image.repeat_interleave(slots)[keep]
    values = (cls + 1).repeat_interleave(slots)[keep]
    flat = points.reshape(-1, 2)[keep]
    counts = torch.bincount(owner, minlength=batch)
    order = torch.argsort(owner, stable=True)
    owner, values, flat = owner[order], values[order], flat[order]
    starts = torch.cumsum(counts, 0) - counts
    position = torch.arange(len(owner), device=owner.device) - starts[owner]
    width = int(counts.max()) if batch else 0
    out_points = points.new_zeros(batch, width, 2)
    labels = torch.full((batch, width), PAD_LABEL, dtype=torch.long, device=points.device)
    classes = torch.zeros(batch, width, dtype=torch.long, device=points.device)
    out_points[owner, position] = flat
    labels[owner, position] = FOREGROUND
    classes[owner, position] = values
    return Prompts(out_points, labels), classes


def classes_present(class_maps: Tensor, num_classes: int) -> Tensor:
    """(B, C) bool: the classes whose value (class + 1) occurs in each class map (B, H, W)."""
    values = class_maps.long().flatten(1)
    values = torch.where((values >= 1) & (values <= num_classes), values, 0)
    present = torch.zeros(len(values), num_classes + 1, dtype=torch.bool, device=values.device)
    return present.scatter_(1, values, True)[:, 1:]


def run_class_maps(
    segmenters: Sequence[Segmenter],
    strategies: Sequence[PromptStrategy],
    default_cam: CamSpec,
    model: nn.Module,
    images: Tensor,
    classify: Callable[[Tensor], tuple[Tensor, Tensor]],
    gt_maps: Tensor | None = None,
    originals: Tensor | None = None,
) -> ClassMapOutput:
    """Every (segmenter, strategy) on a batch, one class map per image.

    images: ImageNet-normalised (B, 3, H, W); classify: images -> the classifier's logits
    (B, C) and the classes (B, C) bool it finds (`ShapeClassifier.classify`);
    gt_maps: class maps (B, H, W) (255 ignored) that reach oracle strategies only; originals:
    the images as uint8 at another size (predict's), where heatmaps, prompts and maps live.

    Oracles run on the classes the ground truth holds, not those the classifier found, with the
    ground-truth masks in place of CAMs: a ceiling of the segmenter given every object, which
    no classifier error lowers.
    """
    logits, found = classify(images)
    image, cls = found.nonzero().unbind(1)
    heatmaps: dict[CamSpec, Tensor] = {}
    size = tuple(images.shape[-2:] if originals is None else originals.shape[-2:])
    for spec in dict.fromkeys([s.cam or default_cam for s in strategies] + [default_cam]):
        if len(image) == 0:  # no image of the batch holds a class the classifier found
            heatmaps[spec] = images.new_zeros(0, *size)
            continue
        heat = compute_heatmaps(model, images[image], spec, targets=cls)[0]
        heatmaps[spec] = resize_heatmaps(heat, size)
    images_uint8 = denormalize_to_uint8(images.detach()) if originals is None else originals
    batch, num_classes = found.shape
    pairs = {False: (image, cls)}  # oracles take the ground truth's classes: see the docstring
    if gt_maps is not None:
        gt_maps = gt_maps.to(images.device)
        gt_image, gt_cls = classes_present(gt_maps, num_classes).nonzero().unbind(1)
        gt_pairs = gt_maps[gt_image].long() == (gt_cls + 1)[:, None, None]
        pairs[True] = (gt_image, gt_cls)
    results = {}
    for configured in segmenters:
        segmenter = configured.for_class_maps()
        embedded = segmenter.embed(images_uint8)
        states = {key: segmenter.select(embedded, i.cpu()) for key, (i, _) in pairs.items()}
        for strategy in strategies:
            oracle = strategy.uses_ground_truth
            pair_image, pair_cls = pairs[oracle]
            heat = gt_pairs.float() if oracle else heatmaps[strategy.cam or default_cam]
            gt = gt_pairs if oracle else None
            if len(pair_image) == 0:  # no image of the batch holds a class: nothing to cut
                cut = no_objects(heat)
            else:
                cut = strategy.segment_objects(heat, segmenter, states[oracle], gt)
            maps = merge_class_maps(cut.masks, heat, pair_image, pair_cls, batch, num_classes)
            prompts, point_classes = per_image_points(
                cut.points, cut.valid, pair_image, pair_cls, batch
            )
            results[f"{segmenter.name}/{strategy.name}"] = ClassMapResult(
                maps, prompts, point_classes
            )
    per_class = heatmaps[default_cam].new_zeros(batch, num_classes, *size)
    per_class[image, cls] = heatmaps[default_cam]
    display = per_class.amax(1)
    return ClassMapOutput(images_uint8, logits.detach(), found, display, results, gt_maps)
