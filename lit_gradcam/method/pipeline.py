"""The no-click pipeline on a batch: CAM -> prompts -> segmenter, sharing every expensive step.

`BatchPipeline` is the method: the CLI's `method` section, which validate, test and predict all
read. It runs one CAM pass per distinct `CamSpec`, one `embed` per segmenter, then every
strategy on that shared state; `predict` runs the one strategy it names. `NoClickPipeline` is
the same thing with the reference notebook's call shape.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import asdict

import numpy as np
import torch
from torch import Tensor, nn

from lit_gradcam.cam.base import BaseCAM
from lit_gradcam.cam.heatmaps import build_cam, compute_heatmaps, resize_heatmaps
from lit_gradcam.cam.spec import CamSpec
from lit_gradcam.errors import ConfigError
from lit_gradcam.imaging import denormalize_to_uint8
from lit_gradcam.method.objects import ClassMapOutput, run_class_maps
from lit_gradcam.method.results import PipelineOutput, StrategyResult
from lit_gradcam.prompt_types import Prompts
from lit_gradcam.prompts.base import PromptStrategy
from lit_gradcam.prompts.objects import GroundTruthObjects, PerObject
from lit_gradcam.prompts.strategies import (
    CamBox,
    CamConsensus,
    CenterPoint,
    ForegroundBackground,
    GroundTruthBox,
    PeakAndValley,
    TopKForeground,
    WeightedCentroid,
)
from lit_gradcam.segmenters.base import Segmenter
from lit_gradcam.segmenters.grabcut import GrabCutSegmenter

#: The CAM strategies read unless they name their own: flip-averaged Grad-CAM++ at layer2.1.
#: Chosen on the validation split with `configs/sweep.yaml`; the numbers live in its results.
DEFAULT_CAM = CamSpec(method="gradcam++", flip_average=True)

#: The CAM the default class-map strategies read: LayerCAM weights each position by its own
#: positive gradient, so a class's map stays on its objects, where Grad-CAM's one weight per
#: channel can light the background beside them as well. Both are more class-specific than
#: Grad-CAM++ where one image holds several classes (`configs/sweep_objects.yaml`); LayerCAM
#: against Grad-CAM was chosen on the validation splits of both generators with
#: `configs/sweep_class_map_cam.yaml` (`results/sweep_class_map_cam/`).
CLASS_MAP_CAM = CamSpec(method="layercam", flip_average=True)

#: The default point oracle's name: the ground-truth object's innermost point.
GROUND_TRUTH_POINT = "GroundTruthPoint"

#: The strategy `predict` runs when the default strategies are evaluated.
DEFAULT_PREDICT_STRATEGY = "CamConsensus"
#: The one it runs for class maps (default object strategies): the best no-click of
#: `configs/sweep_objects.yaml` on the generated multi-object validation split.
DEFAULT_OBJECT_PREDICT_STRATEGY = "CamConsensusPerObject"


def default_strategies() -> list[PromptStrategy]:
    """Every strategy: the report's two on the report's Grad-CAM (reference rows), ours on the
    method's CAM, and the ground-truth oracles as the ceilings: the object's innermost point
    (the first click of interactive-segmentation benchmarks) and its box."""
    report_cam = CamSpec()
    return [
        CenterPoint(),
        TopKForeground(name="TopKForegroundGradCAM", cam=report_cam),
        ForegroundBackground(name="ForegroundBackgroundGradCAM", cam=report_cam),
        WeightedCentroid(name="WeightedCentroidGradCAM", cam=report_cam),
        WeightedCentroid(),
        PeakAndValley(),
        CamBox(),
        CamConsensus(),
        GroundTruthObjects(name=GROUND_TRUTH_POINT),
        GroundTruthBox(),
    ]


def default_object_strategies() -> list[PromptStrategy]:
    """On folders of several classes and objects (class maps): `CamConsensus` on each class
    found as one object (on `CLASS_MAP_CAM`), then on each of its hot components as an object,
    and the per-object oracles (each ground-truth object's innermost point; its box) as the
    ceilings."""
    return [
        CamConsensus(cam=CLASS_MAP_CAM),
        PerObject(name="CamConsensusPerObject", cam=CLASS_MAP_CAM),
        GroundTruthObjects(name="GroundTruthObjectPoints"),
        GroundTruthObjects(box=True, name="GroundTruthObjectBoxes"),
    ]


class BatchPipeline:
    """The method: which CAM, strategies and segmenters run, each shared work done once.

    Args:
        segmenters: promptable segmenters (default: a weight-free GrabCut); `predict` cuts with
            the first.
        strategies: prompt strategies (default: `default_strategies()`, and on folders of
            several classes and objects `default_object_strategies()`).
        cam: the CAM that strategies without their own `cam` read (default: `DEFAULT_CAM`).
        predict_strategy: name of the strategy `predict` runs (default: the first listed that
            does not read the ground truth; with the default strategies, `CamConsensus`, and
            `CamConsensusPerObject` for class maps).
    """

    def __init__(
        self,
        segmenters: Sequence[Segmenter] | None = None,
        strategies: Sequence[PromptStrategy] | None = None,
        cam: CamSpec | None = None,
        predict_strategy: str | None = None,
    ) -> None:
        self.object_strategies = list(strategies or default_object_strategies())
        self.object_predict_strategy = predict_strategy
        if strategies is None:
            self.object_predict_strategy = predict_strategy or DEFAULT_OBJECT_PREDICT_STRATEGY
            strategies = default_strategies()
            predict_strategy = predict_strategy or DEFAULT_PREDICT_STRATEGY
        segmenters = [GrabCutSegmenter()] if segmenters is None else list(segmenters)
        _require_unique_names("segmenters", [s.name for s in segmenters])
        _require_unique_names("strategies", [s.name for s in strategies])
        if not segmenters or not strategies:
            raise ConfigError("the pipeline needs at least one segmenter and one strategy")
        self.segmenters = segmenters
        self.strategies = list(strategies)
        self.cam = cam or DEFAULT_CAM
        self.predict_strategy = predict_strategy
        if predict_strategy is not None:  # a misspelt or oracle name fails now, not at predict
            self._predict_choice()

    def to(self, device: torch.device | str) -> BatchPipeline:
        self.segmenters = [segmenter.to(device) for segmenter in self.segmenters]
        return self

    def cam_of(self, strategy: PromptStrategy) -> CamSpec:
        return strategy.cam or self.cam

    def for_predict(self, class_maps: bool = False) -> BatchPipeline:
        """The pipeline `predict` runs: the first segmenter and the predict strategy only (of
        the object strategies, for class maps)."""
        strategy = (
            self._predict_choice(self.object_strategies, self.object_predict_strategy)
            if class_maps
            else self._predict_choice()
        )
        return BatchPipeline(self.segmenters[:1], [strategy], self.cam, strategy.name)

    def _predict_choice(
        self, strategies: list[PromptStrategy] | None = None, wanted: str | None = None
    ) -> PromptStrategy:
        """The strategy `predict` runs among `strategies` (default: the method's): `wanted`
        (default: `predict_strategy`), or the first that does not read the ground truth."""
        if strategies is None:
            strategies, wanted = self.strategies, self.predict_strategy
        names = [s.name for s in strategies]
        if strategies is not self.strategies and wanted not in names:
            wanted = None  # the default strategies' choice is not an object strategy
        if wanted is None:
            methods = [s for s in strategies if not s.uses_ground_truth]
            if not methods:
                raise ConfigError(
                    f"predict needs a strategy that does not read the ground truth; the method "
                    f"lists only oracles: {names}"
                )
            return methods[0]
        if wanted not in names:
            raise ConfigError(
                f"method.predict_strategy {wanted!r} is not one of the method's strategies: {names}"
            )
        strategy = strategies[names.index(wanted)]
        if strategy.uses_ground_truth:
            raise ConfigError(
                f"method.predict_strategy {strategy.name!r} reads the ground truth, which "
                "predict does not have: name another strategy"
            )
        return strategy

    def check_layers(self, model: nn.Module) -> None:
        """Every CAM's layers exist in `model`: a misspelt layer fails before the first batch."""
        for spec in dict.fromkeys(self.cam_of(s) for s in self.strategies):
            try:
                build_cam(model, spec)
            except ConfigError as error:
                raise ConfigError(f"method cam layers {list(spec.layers)}: {error}") from None

    def run(
        self,
        model: nn.Module,
        images: Tensor,
        gt_masks: Tensor | None = None,
        originals: Tensor | None = None,
    ) -> PipelineOutput:
        """images: ImageNet-normalised (B, 3, H, W); gt_masks only reach oracle strategies.

        originals: the same images as uint8 (B, 3, h, w) at another size (predict's images at
        their own size): the heatmaps are resized to it, and prompts and masks live there.
        """
        heatmaps: dict[CamSpec, Tensor] = {}
        logits = None
        for spec in dict.fromkeys(self.cam_of(s) for s in self.strategies):
            heatmaps[spec], spec_logits = compute_heatmaps(model, images, spec)
            logits = spec_logits if logits is None else logits
        if originals is None:
            images_uint8 = denormalize_to_uint8(images.detach())
        else:
            images_uint8 = originals
            heatmaps = {
                spec: resize_heatmaps(heat, originals.shape[-2:]) for spec, heat in heatmaps.items()
            }
        # what the heatmap alone gives, for strategies whose final prompts follow the masks
        cam_prompts = {
            s.name: s.prompts(heatmaps[self.cam_of(s)], _ground_truth_for(s, gt_masks))
            for s in self.strategies
            if s.consults_segmenter
        }
        results, states = {}, {}
        for segmenter in self.segmenters:
            state = states[segmenter.name] = segmenter.embed(images_uint8)
            for strategy in self.strategies:
                heat = heatmaps[self.cam_of(strategy)]
                gt = _ground_truth_for(strategy, gt_masks)
                prompts, masks, scores = strategy.segment(heat, segmenter, state, gt)
                results[f"{segmenter.name}/{strategy.name}"] = StrategyResult(
                    heat, prompts, masks, scores, cam_prompts.get(strategy.name, prompts)
                )
        return PipelineOutput(images_uint8, logits.detach(), results, states=states)

    def run_class_maps(
        self,
        model: nn.Module,
        images: Tensor,
        classify: Callable[[Tensor], tuple[Tensor, Tensor]],
        gt_maps: Tensor | None = None,
        originals: Tensor | None = None,
    ) -> ClassMapOutput:
        """The method on images of several classes and objects: a class map per image from
        each (segmenter, object strategy); see `lit_gradcam.method.objects.run_class_maps`."""
        return run_class_maps(
            self.segmenters, self.object_strategies, self.cam, model, images, classify,
            gt_maps, originals,
        )  # fmt: skip

    def describe(self, class_maps: bool = False) -> dict[str, object]:
        """Names and settings of every part (with the object strategies when `class_maps`),
        for results.json."""
        return {
            "cam": asdict(self.cam),
            "segmenters": [_describe_segmenter(s) for s in self.segmenters],
            "strategies": [
                {
                    "name": s.name,
                    "class": type(s).__qualname__,
                    "cam": asdict(self.cam_of(s)),
                    "uses_ground_truth": s.uses_ground_truth,
                    "consults_segmenter": s.consults_segmenter,
                }
                for s in (self.object_strategies if class_maps else self.strategies)
            ],
        }


def _describe_segmenter(segmenter: Segmenter) -> dict[str, object]:
    """A segmenter's name and class, and which candidate mask it keeps where it has several."""
    described: dict[str, object] = {"name": segmenter.name, "class": type(segmenter).__qualname__}
    if hasattr(segmenter, "mask_choice"):
        described["mask_choice"] = segmenter.mask_choice
    return described


def _ground_truth_for(strategy: PromptStrategy, gt_masks: Tensor | None) -> Tensor | None:
    """The GT masks for oracles, None for every other strategy."""
    return gt_masks if strategy.uses_ground_truth else None


def _require_unique_names(what: str, names: list[str]) -> None:
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise ConfigError(f"{what} need unique names (set `name:`), repeated: {duplicates}")
    slashed = [n for n in names if "/" in n]
    if slashed:
        raise ConfigError(f"{what} names may not contain '/': {slashed}")


class NoClickPipeline:
    """The reference notebook's call shape over one classifier, CAM, strategy and segmenter.

    `pipeline(images)` takes an ImageNet-normalised batch (B, 3, H, W) and returns bool masks
    (B, H, W); `segment(images, point_coords, point_labels)` cuts masks from given points.
    `cam` is a CAM object of `lit_gradcam.cam` (e.g. ``GradCAM(classifier, ["layer2.1"])``).
    """

    def __init__(self, cam: BaseCAM, strategy: PromptStrategy, segmenter: Segmenter) -> None:
        self.cam = cam
        self.strategy = strategy
        self.segmenter = segmenter

    def __call__(self, images: Tensor) -> Tensor:
        heatmaps = self.cam.heatmaps(images)
        state = self.segmenter.embed(denormalize_to_uint8(images.detach()))
        _, masks, _ = self.strategy.segment(heatmaps, self.segmenter, state)
        return masks

    def segment(
        self,
        images: Tensor,
        point_coords: Tensor | np.ndarray,
        point_labels: Tensor | np.ndarray,
    ) -> Tensor:
        """Masks (B, H, W) bool for points (B, N, 2) in (x, y) pixels and labels (B, N)."""
        device = images.device
        prompts = Prompts(
            torch.as_tensor(point_coords, dtype=torch.float32, device=device),
            torch.as_tensor(point_labels, dtype=torch.long, device=device),
        )
        prompts.validate(*images.shape[-2:])
        state = self.segmenter.embed(denormalize_to_uint8(images.detach()))
        masks, _ = self.segmenter.predict(state, prompts)
        return masks
