"""`MaskWriter`: `python main.py predict` writes a mask, an overlay and a CSV row per image.

It runs the method's predict pipeline (`BatchPipeline.for_predict`: the first segmenter and
the predict strategy) on each batch: Grad-CAM at the classifier's training resolution, the
heatmap resized to the images' own size, where the strategy picks prompts and the segmenter
cuts the mask. Images of one size are segmented together. Under DDP every rank writes the files
of its own images (Lightning's predict sampler never repeats one) and its own part of the rows;
rank 0 merges them into `predictions.csv` after a barrier. Every file goes through
`OutputFolder`: the run's files replace the last run's only once it has succeeded, and a file
of the user's is never replaced.

A classifier of a folder's own classes (its classes.txt) gets a class map per image instead
(`BatchPipeline.for_predict(class_maps=True)`, see `lit_gradcam.prediction.class_maps`): an
index PNG as `<stem>_mask.png`, an overlay with a legend, and a row naming the classes found.

`predictions.csv` has a row per entry of predict_dir: an image's results, or, for a file that
could not be decoded and for each entry that is not read (another suffix, a folder, a dangling
link), the reason in `error`. Cells holding names or text (file, mask, overlay, note, error)
that start with `=`, `+`, `-`, `@`, a tab or CR get a leading `'` (OWASP's CSV-injection rule),
so a spreadsheet shows a file named `=cmd.png` as text instead of running it as a formula.
"""

from __future__ import annotations

import json
import warnings
from collections import defaultdict
from pathlib import Path
from typing import Any

import lightning as L
import numpy as np
import torch
from lightning.pytorch.callbacks import BasePredictionWriter
from lightning.pytorch.utilities import rank_zero_warn
from PIL import Image
from torch import Tensor

from lit_gradcam.classifier.no_shape import NoShapeFlag
from lit_gradcam.drawing import blend, draw_prompts, heat_colours, mask_outline
from lit_gradcam.method.pipeline import BatchPipeline
from lit_gradcam.method.results import StrategyResult
from lit_gradcam.prediction.class_maps import CLASS_MAP_CSV_COLUMNS, class_map_files
from lit_gradcam.prediction.files import (
    CSV_NAME,
    OutputExistsError,
    OutputFolder,
    write_csv,
)
from lit_gradcam.prompt_types import PAD_LABEL, Prompts

CSV_COLUMNS = (
    "file",
    "predicted_class",
    "probability",
    "no_shape",
    "points",
    "box",
    "segmenter_score",
    "mask",
    "overlay",
    "note",
    "error",
)
#: The files written per image: `<stem>_mask.png` and `<stem>_overlay.png`.
KINDS = ("mask", "overlay")
#: How many file names a warning lists before "...".
NAMES_SHOWN = 3


class MaskWriter(BasePredictionWriter):
    """Writes `<stem>_mask.png` (0/255), `<stem>_overlay.png` and `predictions.csv`.

    Args:
        output_dir: where the files go (created if absent).
        method: the method whose predict pipeline runs (default: `BatchPipeline()`); the CLI
            links its `method` section here, the one validate and test score.
        overwrite: replace the predictions of the last run into `output_dir` (the files its
            manifest lists); without it such a folder is refused before anything is written.
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
        self.class_maps = False  # whether the classifier's classes are a folder's own
        self._folder: OutputFolder | None = None  # this run's output folder, from setup
        self._rows: list[dict[str, str]] = []
        self._skipped: list[tuple[str, str]] = []  # entries of predict_dir not read (rank 0)

    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        """Check the output folder (before anything is written), then open the run's staging
        folder. The datamodule's setup has run: its images' output names are known."""
        if stage != "predict":
            return
        # first, so a bad strategy name or segmenter checkpoint fails before any file changes
        self.pipeline = self.method.for_predict().to(pl_module.device)
        self.pipeline.check_layers(pl_module.model)
        predict_dir = getattr(getattr(trainer.datamodule, "hparams", None), "predict_dir", None)
        if predict_dir is not None and Path(predict_dir).resolve() == self.output_dir.resolve():
            raise OutputExistsError(
                f"--output.output_dir {self.output_dir} is the folder being predicted "
                "(--data.predict_dir): the next run would read its masks as inputs; choose "
                "another --output.output_dir"
            )
        images = getattr(trainer.datamodule, "predict_images", None)
        stems = getattr(images, "output_stems", [])
        folder = OutputFolder(self.output_dir, self.overwrite)
        folder.check([CSV_NAME, *(f"{s}_{kind}.png" for s in stems for kind in KINDS)])
        trainer.strategy.barrier()  # every rank has checked before rank 0 creates anything
        folder.open_staging(trainer)
        self._folder, self._rows = folder, []
        self._skipped = list(getattr(images, "skipped", [])) if trainer.is_global_zero else []
        if self._skipped:
            names = _first_names([name for name, _ in self._skipped])
            rank_zero_warn(
                f"{len(self._skipped)} entries of {predict_dir} are not read ({names}): "
                f"listed in {CSV_NAME} with the reason"
            )

    def on_predict_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        """The checkpoint is restored: a classifier of a folder's own classes predicts class
        maps, with the method's object strategy."""
        self.class_maps = pl_module.hparams.get("classes") is not None
        if self.class_maps:
            self.pipeline = self.method.for_predict(class_maps=True).to(pl_module.device)

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
        notes = batch.get("note", [""] * len(batch["name"]))
        by_size: dict[tuple[int, ...], list[int]] = defaultdict(list)
        for i, (name, error) in enumerate(zip(batch["name"], batch["error"], strict=True)):
            if error:
                warnings.warn(f"skipped {name}: {error}", stacklevel=1)
                self._rows.append({"file": name, "note": notes[i], "error": error})
            else:
                by_size[tuple(batch["original"][i].shape)].append(i)
        for indices in by_size.values():
            originals = torch.stack([batch["original"][i] for i in indices]).to(pl_module.device)
            no_shape = _no_shape(trainer, batch["image"][indices].to(pl_module.device))
            if self.class_maps:
                logits = prediction[indices].to(pl_module.device)
                self._write_class_maps(
                    pl_module, batch, indices, originals, logits, no_shape, notes
                )
                continue
            output = self.pipeline.run(pl_module.model, batch["image"][indices], None, originals)
            (result,) = output.results.values()
            probabilities = output.logits.softmax(-1)
            for j, i in enumerate(indices):
                name, stem, image = batch["name"][i], batch["stem"][i], originals[j]
                row = self._write_one(
                    name, stem, image, result[j : j + 1], probabilities[j], pl_module.class_names
                )
                self._rows.append({**row, "no_shape": no_shape[j], "note": notes[i]})

    def _write_class_maps(
        self,
        pl_module: L.LightningModule,
        batch: dict[str, Any],
        indices: list[int],
        originals: Tensor,
        logits: Tensor,
        no_shape: list[str],
        notes: list[str],
    ) -> None:
        """Class maps of images of one size, whose `predict_step` logits are `logits`: files
        staged, CSV rows kept."""
        images = batch["image"][indices]

        def classify(_: Tensor) -> tuple[Tensor, Tensor]:
            return logits, pl_module.found_classes(logits)

        output = self.pipeline.run_class_maps(pl_module.model, images, classify, None, originals)
        (result,) = output.results.values()
        multi_label = pl_module.hparams.multi_label
        probabilities = output.logits.sigmoid() if multi_label else output.logits.softmax(-1)
        for j, i in enumerate(indices):
            prompts = Prompts(result.prompts.points[j : j + 1], result.prompts.labels[j : j + 1])
            row = class_map_files(
                self._folder.staging, batch["name"][i], batch["stem"][i], originals[j],
                result.class_maps[j], prompts, result.point_classes[j : j + 1], output.found[j],
                probabilities[j], pl_module.class_names,
            )  # fmt: skip
            self._rows.append({**row, "no_shape": no_shape[j], "note": notes[i]})

    def _write_one(
        self,
        name: str,
        stem: str,
        image: Tensor,
        result: StrategyResult,
        probabilities: Tensor,
        classes: tuple[str, ...],
    ) -> dict[str, str]:
        """One image (uint8 (3, h, w)) and its result: mask and overlay staged, CSV row out."""
        mask_file, overlay_file = (f"{stem}_{kind}.png" for kind in KINDS)
        mask = result.masks[0].cpu().numpy().astype("uint8") * 255
        _save_png(self._folder.staging / mask_file, mask)
        overlay = _overlay(image[None], result.heatmaps, result.prompts, result.masks)
        _save_png(self._folder.staging / overlay_file, overlay[0].permute(1, 2, 0).cpu().numpy())
        label = int(probabilities.argmax())
        prompts = result.prompts
        return {
            "file": name,
            "predicted_class": classes[label],
            "probability": f"{probabilities[label].item():.4f}",
            "points": _points_text(prompts),
            "box": "" if prompts.boxes is None else " ".join(f"{v:.1f}" for v in prompts.boxes[0]),
            "segmenter_score": f"{result.scores[0].item():.4f}",
            "mask": mask_file,
            "overlay": overlay_file,
            "error": "",
        }

    def on_predict_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        """The run has succeeded: each rank stages its rows; rank 0 merges them with the
        entries not read into the CSV and moves the run's files into place."""
        staging = self._folder.staging
        (staging / f"rows.rank{trainer.global_rank}.json").write_text(json.dumps(self._rows))
        trainer.strategy.barrier()
        if not trainer.is_global_zero:
            return
        rows = [{"file": name, "error": reason} for name, reason in self._skipped]
        for part in sorted(staging.glob("rows.rank*.json")):
            rows += json.loads(part.read_text())
            part.unlink()
        write_csv(
            staging / CSV_NAME, rows, CLASS_MAP_CSV_COLUMNS if self.class_maps else CSV_COLUMNS
        )
        self._folder.commit()
        flagged = sorted(row["file"] for row in rows if row.get("no_shape") == "true")
        if flagged:
            rank_zero_warn(
                f"{len(flagged)} image(s) most likely hold none of the shapes ("
                f"{_first_names(flagged)}): their class and mask are guesses; "
                f"no_shape is true in {CSV_NAME}"
            )
        if self.class_maps:
            _say_which_hold_no_class(rows)

    def on_exception(
        self, trainer: L.Trainer, pl_module: L.LightningModule, exception: BaseException
    ) -> None:
        """A failed run leaves the output folder as it was: only its staging folder goes."""
        if self._folder is not None:
            self._folder.discard()


def _no_shape(trainer: L.Trainer, images: Tensor) -> list[str]:
    """Per image "true" or "false" from the run's `NoShapeFlag`; "" where there is none or its
    checkpoint holds no calibrated flag (saved with the flag off, or before it existed)."""
    flag = next((c for c in trainer.callbacks if isinstance(c, NoShapeFlag)), None)
    flags = flag.flags(images) if flag is not None else None
    if flags is None:
        return [""] * len(images)
    return ["true" if value else "false" for value in flags.tolist()]


def _overlay(images: Tensor, heatmaps: Tensor, prompts: Prompts, masks: Tensor) -> Tensor:
    """Image + heatmap + prompts + mask outline, uint8 (B, 3, H, W); marks scale with size."""
    radius = max(1.5, min(images.shape[-2:]) / 32)
    width = max(1, min(images.shape[-2:]) // 96)
    out = blend(images, heat_colours(heatmaps), 0.4)
    out = mask_outline(out, masks, width)
    return draw_prompts(out, prompts, radius)


def _save_png(path: Path, image: np.ndarray) -> None:
    """Write an (H, W) or (H, W, 3) uint8 array as PNG."""
    Image.fromarray(image).save(path, format="PNG")


def _points_text(prompts: Prompts) -> str:
    """'x y label' per real point of image 0, ';'-separated (padding dropped)."""
    keep = prompts.labels[0] != PAD_LABEL
    points, labels = prompts.points[0][keep], prompts.labels[0][keep]
    return "; ".join(
        f"{x:.1f} {y:.1f} {int(label)}"
        for (x, y), label in zip(points.tolist(), labels.tolist(), strict=True)
    )


def _say_which_hold_no_class(rows: list[dict[str, str]]) -> None:
    """Name the images in which the classifier found none of its classes (a classifier trained
    with images of no class may say so): their index PNGs are all background."""
    empty = sorted(row["file"] for row in rows if not row.get("error") and not row["classes"])
    if empty:
        rank_zero_warn(
            f"{len(empty)} image(s) hold none of the classes, as the classifier reads them ("
            f"{_first_names(empty)}): their index PNG is all background; classes is "
            f"empty in {CSV_NAME}"
        )


def _first_names(names: list[str]) -> str:
    """The first NAMES_SHOWN names for a message, then ', ...' if there are more."""
    return ", ".join(names[:NAMES_SHOWN]) + (", ..." if len(names) > NAMES_SHOWN else "")
