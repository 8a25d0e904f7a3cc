"""`SegmentationEvaluation`: the test-time callback that runs and scores the no-click pipeline.

Per test batch: one CAM pass per distinct `CamSpec`, one `embed` per segmenter, every strategy
on that shared state; torchmetrics accumulate (and sync under DDP); at epoch end scalars go to
the logger at the tested checkpoint's step, `results.json` / `results.md` to the run's log dir,
and to TensorBoard the image grids, a bar chart per segmenter, the headline with a compact table
and the run's settings beside its headline metrics (HPARAMS tab, one row per run).
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import lightning as L
import torch
from lightning.pytorch.loggers import TensorBoardLogger
from lightning.pytorch.trainer.states import TrainerFn
from lightning.pytorch.utilities import rank_zero_only, rank_zero_warn
from torch import Tensor, nn
from torchmetrics.classification import MulticlassAccuracy

from lit_gradcam.class_map_drawing import class_map_grid
from lit_gradcam.drawing import pipeline_grid
from lit_gradcam.errors import ConfigError
from lit_gradcam.evaluation.charts import CHART_BARS, CLASS_MAP_BARS, metric_bars
from lit_gradcam.evaluation.class_map_scoring import ClassMapScoring, require_same_classes
from lit_gradcam.evaluation.click_scoring import ClickScoring
from lit_gradcam.evaluation.hparams import evaluation_step, headline_scalars, log_hparams
from lit_gradcam.evaluation.metrics import SegmentationMetrics
from lit_gradcam.evaluation.tables import (
    CLASS_MAP_COMPACT_COLUMNS,
    COMPACT_COLUMNS,
    TABLE_COLUMNS,
    Headline,
    compact_table,
    results_table,
)
from lit_gradcam.method.objects import ClassMapOutput
from lit_gradcam.method.pipeline import BatchPipeline
from lit_gradcam.method.results import PipelineOutput
from lit_gradcam.prompts.base import PromptStrategy

#: `clicks` settings: none, the clicker from nothing, or also from every no-click strategy.
CLICK_MODES = ("none", "clicker", "all")


class SegmentationEvaluation(L.Callback):
    """Scores every (segmenter, strategy) pair of the method on the test split (and on val).

    On a folder of several classes (its `classes.txt`: class-index masks) the method makes a
    class map per image (`BatchPipeline.run_class_maps`, with its object strategies) and each
    pair is scored by per-class IoU and mIoU and by where its object prompts fell
    (`ClassMapScoring`); on a course folder, by the single-object metrics and, with `clicks`,
    in clicks of a simulated user (`ClickScoring`).

    Args:
        method: the CAM, strategies and segmenters to score (default: `BatchPipeline()`); the
            CLI links its `method` section here, the one `predict` reads too.
        num_logged_images: how many of the first test images go into the TensorBoard grids.
        every_n_validations: while fitting, also evaluate on the validation split at every
            N-th validation (0 = never), however validation is scheduled (per epoch or every
            `val_check_interval` steps); logged as ``val_eval/...``, written to
            ``results_val_step{global_step}.json``.
        clicks: on single-object folders, what a simulated user's clicks give (`ClickScoring`):
            "clicker" = each segmenter clicked from nothing (mIoU after 1-5 clicks, NoC@85/90)
            and each row's worth in clicks; "all" = also the clicks from each no-click
            strategy's prompts to an IoU of 0.90 (NoC@90 from there), many more segmenter
            calls; "none". Segmenters that do not implement `select` are not clicked.
    """

    def __init__(
        self,
        method: BatchPipeline | None = None,
        num_logged_images: int = 16,
        every_n_validations: int = 0,
        clicks: str = "clicker",
    ) -> None:
        self.pipeline = method or BatchPipeline()
        self.num_logged_images = num_logged_images
        self.every_n_validations = every_n_validations
        self._validations = 0  # validations run while fitting, sanity check excluded
        self._evaluating = False  # whether the current validation is evaluated
        # keyed "{segmenter}/{strategy}"; a ModuleList (not a ModuleDict, whose keys may not
        # hold "." or "/") so the metrics follow the module to its device
        keys = self._metric_keys(self.pipeline.strategies)
        self._metric_list = nn.ModuleList(SegmentationMetrics() for _ in keys)
        self.metrics = dict(zip(keys, self._metric_list, strict=True))
        self.class_accuracy: MulticlassAccuracy | None = None  # sized by the model's classes
        self.class_maps: ClassMapScoring | None = None  # on folders of class-index masks
        self.clicks: ClickScoring | None = None
        if clicks not in CLICK_MODES:
            raise ConfigError(f"evaluation.clicks must be one of {CLICK_MODES}, got {clicks!r}")
        clickable = [s.name for s in self.pipeline.segmenters if s.selects]
        if clicks != "none" and clickable:  # the clicker re-prompts only the images clicking
            no_click = [s.name for s in self.pipeline.strategies if not s.uses_ground_truth]
            self.clicks = ClickScoring(clickable, no_click if clicks == "all" else [])
        self._logged: list[PipelineOutput | ClassMapOutput] = []

    def _metric_keys(self, strategies: list[PromptStrategy]) -> list[str]:
        return [f"{a.name}/{b.name}" for a in self.pipeline.segmenters for b in strategies]

    # --- lifecycle -----------------------------------------------------------------------
    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        self.pipeline.check_layers(pl_module.model)  # a misspelt layer fails before training
        self._metric_list.to(pl_module.device)
        if self.clicks is not None:
            self.clicks.to(pl_module.device)

    def on_test_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._start(trainer, pl_module)

    def on_test_batch_end(
        self,
        trainer: L.Trainer,
        pl_module: L.LightningModule,
        outputs: Any,
        batch: Any,
        batch_idx: int,
        dataloader_idx: int = 0,
    ) -> None:
        self._evaluate_batch(pl_module, batch)

    def on_test_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._finish(trainer, pl_module, prefix="eval", accuracy_key="test/acc")

    def on_validation_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._evaluating = self._evaluates_this_validation(trainer)
        if self._evaluating:
            self._start(trainer, pl_module)

    def on_validation_batch_end(
        self,
        trainer: L.Trainer,
        pl_module: L.LightningModule,
        outputs: Any,
        batch: Any,
        batch_idx: int,
        dataloader_idx: int = 0,
    ) -> None:
        if self._evaluating:
            self._evaluate_batch(pl_module, batch)

    def on_validation_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if self._evaluating:
            self._finish(trainer, pl_module, prefix="val_eval", accuracy_key="val/acc")

    # --- work ----------------------------------------------------------------------------
    def _evaluates_this_validation(self, trainer: L.Trainer) -> bool:
        """Always under `python main.py validate` (tuning runs on val); while fitting, at every
        `every_n_validations`-th validation."""
        if trainer.state.fn == TrainerFn.VALIDATING:
            return True
        if trainer.state.fn != TrainerFn.FITTING or trainer.sanity_checking:
            return False
        self._validations += 1
        n = self.every_n_validations
        return n > 0 and self._validations % n == 0

    def _start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        """Reset the metrics, sized by the model's classes (known once a checkpoint is
        restored); segmenters (SAM's weights) reach the device only when needed."""
        self.pipeline.to(pl_module.device)
        for metric in self.metrics.values():
            metric.reset()
        if self.clicks is not None:
            self.clicks.reset()
        classes = tuple(getattr(pl_module, "class_names", ()))
        data = trainer.datamodule
        self.class_maps = None
        if getattr(data, "semantic", False):
            require_same_classes(classes, tuple(data.classes))
            keys = self._metric_keys(self.pipeline.object_strategies)
            multi_label = bool(pl_module.hparams.get("multi_label", False))
            self.class_maps = ClassMapScoring(keys, classes, multi_label).to(pl_module.device)
        else:  # class maps score the classifier themselves
            accuracy = MulticlassAccuracy(len(classes), average=None)
            self.class_accuracy = accuracy.to(pl_module.device)
        self._logged = []

    def _evaluate_batch(self, pl_module: L.LightningModule, batch: Any) -> None:
        images, labels, gt_masks = batch
        if self.class_maps is not None:
            classify = pl_module.classify
            output = self.pipeline.run_class_maps(pl_module.model, images, classify, gt_masks)
            self.class_maps.update(output, labels, gt_masks)
            self._keep_for_figures(output)
            return
        output = self.pipeline.run(pl_module.model, images, gt_masks)
        self.class_accuracy.update(output.logits, labels)
        for key, result in output.results.items():
            self.metrics[key].update(result.prompts, result.masks, gt_masks, result.cam_prompts)
        if self.clicks is not None:
            self.clicks.update(output, self.pipeline.segmenters, gt_masks)
        self._keep_for_figures(output.head(len(images), gt_masks))

    def _keep_for_figures(self, output: PipelineOutput | ClassMapOutput) -> None:
        """Keep the first `num_logged_images` images' results for the TensorBoard grids."""
        missing = self.num_logged_images - sum(o.batch_size for o in self._logged)
        if missing > 0:
            self._logged.append(output.head(missing).to("cpu"))

    def _finish(
        self, trainer: L.Trainer, pl_module: L.LightningModule, prefix: str, accuracy_key: str
    ) -> None:
        """Log scalars, the headline's with them, at the evaluation's step (a tested checkpoint's
        own); write results.json / results.md (named by prefix); to TensorBoard, the grids, a
        bar chart per segmenter, the compact table and, for a test or validate run (not an
        evaluation while fitting, several per run), its HPARAMS row."""
        step = evaluation_step(trainer)
        results = self._log_results(pl_module, prefix=prefix)
        if empty := results.get("num_empty_gt"):
            rank_zero_warn(
                f"{empty} of the {results['num_images']} images scored have an empty ground-truth "
                "mask: no segmentation metric counts them (classification accuracy does)"
            )
        results[accuracy_key] = _as_float(trainer.callback_metrics.get(accuracy_key))
        score = "iou" if self.class_maps is None else "miou"
        headline = Headline.of(results["rows"], score, results[accuracy_key])
        results["headline"] = headline.as_dict()
        headline_tags = headline_scalars(headline, prefix, accuracy_key)
        logged = {k: v for k, v in headline_tags.items() if v is not None and k != accuracy_key}
        results["metrics"].update(logged)
        alone = trainer.state.fn != TrainerFn.FITTING
        if alone:  # Lightning logs this epoch's scalars at a logged "step", else at step 0
            logged["step"] = float(step)
        pl_module.log_dict(logged, sync_dist=False)
        log_dir = trainer.log_dir or trainer.default_root_dir  # a collective call under DDP
        if prefix == "eval":
            stem = "results"
        elif trainer.state.fn == TrainerFn.VALIDATING:
            stem = "results_val"
        else:
            stem = f"results_val_step{step}"
        self._write_results(trainer, Path(log_dir), results, prefix, stem, headline, step)
        self._log_grids(trainer, pl_module, tag=prefix, step=step)
        self._log_charts(trainer, results["rows"], tag=prefix, step=step)
        if alone and trainer.is_global_zero:
            log_hparams(trainer, pl_module, self.pipeline, list(headline_tags), step)

    def _log_results(self, pl_module: L.LightningModule, prefix: str) -> dict[str, Any]:
        """Compute (DDP-synced), log scalars, return the results dict written to files."""
        if self.class_maps is not None:
            uses_gt = {s.name: s.uses_ground_truth for s in self.pipeline.object_strategies}
            rows, scalars, extra = self.class_maps.results(prefix, uses_gt)
            pl_module.log_dict(scalars, sync_dist=False)  # already synced by torchmetrics
            return {
                "metrics": scalars,
                "rows": rows,
                **extra,
                "config": self.pipeline.describe(class_maps=True),
            }
        rows, scalars = [], {}
        strategies = {s.name: s for s in self.pipeline.strategies}
        classes = pl_module.class_names
        for key, metric in self.metrics.items():
            segmenter, strategy = key.split("/", 1)
            # a metric that scored nothing (a box-only oracle's hit rate) is null, not NaN
            values = {name: _finite_or_none(v) for name, v in metric.compute().items()}
            rows.append(
                {
                    "segmenter": segmenter,
                    "strategy": strategy,
                    "uses_ground_truth": strategies[strategy].uses_ground_truth,
                    **values,
                }
            )
            scalars.update(
                {f"{prefix}/{key}/{name}": v for name, v in values.items() if v is not None}
            )
        per_class = self.class_accuracy.compute()
        scalars.update({f"{prefix}/class_acc/{c}": per_class[i] for i, c in enumerate(classes)})
        clicks = {}
        if self.clicks is not None:
            clicks, click_scalars = self.clicks.annotate(rows, prefix)
            scalars.update(click_scalars)
        pl_module.log_dict(scalars, sync_dist=False)  # already synced by torchmetrics
        first = next(iter(self.metrics.values()))
        return {
            "metrics": {k: _as_float(v) for k, v in scalars.items()},
            "rows": rows,
            "clicks": clicks,
            "class_accuracy": {c: _as_float(per_class[i]) for i, c in enumerate(classes)},
            "num_images": int(first.num_images),
            "num_empty_gt": int(first.num_empty_gt),
            "config": self.pipeline.describe(),
        }

    @rank_zero_only
    def _write_results(
        self,
        trainer: L.Trainer,
        log_dir: Path,
        results: dict[str, Any],
        prefix: str,
        stem: str,
        headline: Headline,
        step: int,
    ) -> None:
        """results.json and results.md with every column; TensorBoard's TEXT tab gets the
        headline and the compact table, which reads unwrapped in its card."""
        log_dir.mkdir(parents=True, exist_ok=True)
        results["checkpoint"] = trainer.ckpt_path
        class_maps = self.class_maps is not None
        columns = self.class_maps.columns() if class_maps else TABLE_COLUMNS
        (log_dir / f"{stem}.json").write_text(json.dumps(results, indent=2) + "\n")
        (log_dir / f"{stem}.md").write_text(results_table(results["rows"], columns))
        if isinstance(trainer.logger, TensorBoardLogger):
            compact = CLASS_MAP_COMPACT_COLUMNS if class_maps else COMPACT_COLUMNS
            text = compact_table(results["rows"], compact, headline)
            trainer.logger.experiment.add_text(f"{prefix}/results", text, step)

    @rank_zero_only
    def _log_grids(
        self, trainer: L.Trainer, pl_module: L.LightningModule, tag: str, step: int
    ) -> None:
        if not isinstance(trainer.logger, TensorBoardLogger) or not self._logged:
            return
        writer = trainer.logger.experiment
        if self.class_maps is not None:
            maps = ClassMapOutput.cat(self._logged)
            for key, result in maps.results.items():
                grid = class_map_grid(
                    maps.images_uint8, maps.heatmaps, result.prompts, result.class_maps,
                    maps.gt_maps, pl_module.class_names,
                )  # fmt: skip
                writer.add_image(f"{tag}/{key}", grid, step)
            return
        merged = PipelineOutput.cat(self._logged)
        for key, result in merged.results.items():
            grid = pipeline_grid(
                merged.images_uint8, result.heatmaps, result.prompts, result.masks, merged.gt_masks
            )
            writer.add_image(f"{tag}/{key}", grid, step)

    @rank_zero_only
    def _log_charts(
        self, trainer: L.Trainer, rows: list[dict[str, Any]], tag: str, step: int
    ) -> None:
        """One bar chart per segmenter: every strategy's hit rate and IoU side by side."""
        if not isinstance(trainer.logger, TensorBoardLogger):
            return
        for segmenter in self.pipeline.segmenters:
            mine = [row for row in rows if row["segmenter"] == segmenter.name]
            bars = CHART_BARS if self.class_maps is None else CLASS_MAP_BARS
            chart = metric_bars(mine, title=f"{segmenter.name} ({tag})", bars=bars)
            writer = trainer.logger.experiment
            writer.add_image(f"{tag}_chart/{segmenter.name}", chart, step)


def _finite_or_none(value: float) -> float | None:
    return None if math.isnan(value) else value


def _as_float(value: Tensor | float | None) -> float | None:
    if value is None:
        return None
    return float(value.item() if isinstance(value, torch.Tensor) else value)
