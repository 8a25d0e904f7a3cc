"""`MaskWriter`: `python main.py predict` writes a mask, an overlay and a CSV row per image.

It runs the method's predict pipeline (`BatchPipeline.for_predict`: the first segmenter and
the predict strategy) on each batch: Grad-CAM at the classifier's training resolution, the
heatmap resized to the images' own size, where the strategy picks prompts and the segmenter
cuts the mask. Images of one size are segmented together. Under DDP every rank writes the files
of its own images (Lightning's predict sampler never repeats one) and its own CSV part; rank 0
merges the parts into `predictions.csv` after a barrier.
"""

from __future__ import annotations

import csv
import warnings
from collections import defaultdict
from pathlib import Path
from typing import Any

import lightning as L
import numpy as np
import torch
from lightning.pytorch.callbacks import BasePredictionWriter
from PIL import Image
from torch import Tensor

from lit_gradcam.data import CLASSES
from lit_gradcam.evaluation.figures import blend, draw_prompts, heat_colours, mask_outline
from lit_gradcam.pipeline import BatchPipeline, StrategyResult
from lit_gradcam.segmenters.base import PAD_LABEL, Prompts

CSV_NAME = "predictions.csv"
CSV_COLUMNS = (
    "file",
    "predicted_class",
    "probability",
    "points",
    "box",
    "segmenter_score",
    "mask",
    "overlay",
    "error",
)


class OutputExistsError(FileExistsError):
    """The output folder already holds predictions and overwriting was not asked for."""


class MaskWriter(BasePredictionWriter):
    """Writes `<stem>_mask.png` (0/255), `<stem>_overlay.png` and `predictions.csv`.

    Args:
        output_dir: where the files go (created if absent).
        method: the method whose predict pipeline runs (default: `BatchPipeline()`); the CLI
            links its `method` section here, the one validate and test score.
        overwrite: replace the predictions already in `output_dir`; without it such a folder
            is refused before anything is written.
    """

    def __init__(
        self,
        output_dir: str = "predictions",
        method: BatchPipeline | None = None,
        overwrite: bool = False,
    ) -> None:
        super().__init__(write_interval="batch")
        self.output_dir = Path(output_dir)
        self.method = method or BatchPipeline()
        self.overwrite = overwrite
        self.pipeline: BatchPipeline | None = None  # the method's predict pipeline, from setup
        self._rows: list[dict[str, str]] = []

    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        if stage != "predict":
            return
        # first, so a bad strategy name or segmenter checkpoint fails before any file changes
        self.pipeline = self.method.for_predict().to(pl_module.device)
        predict_dir = getattr(getattr(trainer.datamodule, "hparams", None), "predict_dir", None)
        if predict_dir is not None and Path(predict_dir).resolve() == self.output_dir.resolve():
            raise OutputExistsError(
                f"--output.output_dir {self.output_dir} is the folder being predicted "
                "(--data.predict_dir): the next run would read its masks as inputs; choose "
                "another --output.output_dir"
            )
        written = self._previous_outputs()
        if written and not self.overwrite:
            raise OutputExistsError(
                f"{self.output_dir} already holds predictions ({written[0].name}, ...): pass "
                "--output.overwrite true to replace them, or choose another --output.output_dir"
            )
        trainer.strategy.barrier()  # every rank has checked before any rank writes
        if trainer.is_global_zero:
            for path in written:
                path.unlink()
            self.output_dir.mkdir(parents=True, exist_ok=True)
        trainer.strategy.barrier()
        self._rows = []

    def _previous_outputs(self) -> list[Path]:
        if not self.output_dir.is_dir():
            return []
        patterns = ("*_mask.png", "*_overlay.png", "predictions*.csv")
        return sorted(p for pattern in patterns for p in self.output_dir.glob(pattern))

    def write_on_batch_end(
        self,
        trainer: L.Trainer,
        pl_module: L.LightningModule,
        prediction: Tensor,
        batch_indices: Any,
        batch: dict[str, Any],
        batch_idx: int,
        dataloader_idx: int = 0,
    ) -> None:
        """Bad files become CSV rows with their error; the others run the pipeline, one run
        per image size."""
        by_size: dict[tuple[int, ...], list[int]] = defaultdict(list)
        for i, (name, error) in enumerate(zip(batch["name"], batch["error"], strict=True)):
            if error:
                warnings.warn(f"skipped {name}: {error}", stacklevel=1)
                self._rows.append({"file": name, "error": error})
            else:
                by_size[tuple(batch["original"][i].shape)].append(i)
        for indices in by_size.values():
            originals = torch.stack([batch["original"][i] for i in indices]).to(pl_module.device)
            output = self.pipeline.run(pl_module.model, batch["image"][indices], None, originals)
            (result,) = output.results.values()
            probabilities = output.logits.softmax(-1)
            for j, i in enumerate(indices):
                name, stem, image = batch["name"][i], batch["stem"][i], originals[j]
                self._rows.append(
                    self._write_one(name, stem, image, result[j : j + 1], probabilities[j])
                )

    def _write_one(
        self, name: str, stem: str, image: Tensor, result: StrategyResult, probabilities: Tensor
    ) -> dict[str, str]:
        """One image (uint8 (3, h, w)) and its result: mask and overlay written, CSV row out."""
        mask_file, overlay_file = f"{stem}_mask.png", f"{stem}_overlay.png"
        mask = result.masks[0].cpu().numpy().astype("uint8") * 255
        _save_png(self.output_dir / mask_file, mask)
        overlay = _overlay(image[None], result.heatmaps, result.prompts, result.masks)
        _save_png(self.output_dir / overlay_file, overlay[0].permute(1, 2, 0).cpu().numpy())
        label = int(probabilities.argmax())
        prompts = result.prompts
        return {
            "file": name,
            "predicted_class": CLASSES[label],
            "probability": f"{probabilities[label].item():.4f}",
            "points": _points_text(prompts),
            "box": "" if prompts.boxes is None else " ".join(f"{v:.1f}" for v in prompts.boxes[0]),
            "segmenter_score": f"{result.scores[0].item():.4f}",
            "mask": mask_file,
            "overlay": overlay_file,
            "error": "",
        }

    def on_predict_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        """Each rank writes its CSV part; rank 0 merges them, sorted by file name."""
        if trainer.world_size == 1:
            _write_csv(self.output_dir / CSV_NAME, self._rows)
            return
        _write_csv(self.output_dir / f"predictions.rank{trainer.global_rank}.csv", self._rows)
        trainer.strategy.barrier()
        if trainer.is_global_zero:
            parts = sorted(self.output_dir.glob("predictions.rank*.csv"))
            rows = [row for part in parts for row in csv.DictReader(part.open(newline=""))]
            _write_csv(self.output_dir / CSV_NAME, rows)
            for part in parts:
                part.unlink()


def _overlay(images: Tensor, heatmaps: Tensor, prompts: Prompts, masks: Tensor) -> Tensor:
    """Image + heatmap + prompts + mask outline, uint8 (B, 3, H, W); marks scale with size."""
    radius = max(1.5, min(images.shape[-2:]) / 32)
    width = max(1, min(images.shape[-2:]) // 96)
    out = blend(images, heat_colours(heatmaps), 0.4)
    out = mask_outline(out, masks, width)
    return draw_prompts(out, prompts, radius)


def _save_png(path: Path, image: np.ndarray) -> None:
    """Write an (H, W) or (H, W, 3) uint8 array as PNG."""
    Image.fromarray(image).save(path)


def _points_text(prompts: Prompts) -> str:
    """'x y label' per real point of image 0, ';'-separated (padding dropped)."""
    keep = prompts.labels[0] != PAD_LABEL
    points, labels = prompts.points[0][keep], prompts.labels[0][keep]
    return "; ".join(
        f"{x:.1f} {y:.1f} {int(label)}"
        for (x, y), label in zip(points.tolist(), labels.tolist(), strict=True)
    )


def _write_csv(path: Path, rows: list[dict[str, str]]) -> None:
    """Write rows sorted by file name, atomically (temp file, then rename)."""
    temporary = path.with_suffix(".csv.partial")
    with temporary.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=CSV_COLUMNS, restval="")
        writer.writeheader()
        writer.writerows(sorted(rows, key=lambda row: row["file"]))
    temporary.replace(path)
