"""Where an evaluation's TensorBoard records go: the step (the tested checkpoint's), the headline
scalars, and the HPARAMS row of a test or validate run, its settings beside those scalars.

TensorBoard's HPARAMS tab shows one row per run folder that holds a session, and takes its
columns from the first experiment record it finds in any run. So each evaluated run writes one
session into its own folder (no sub-run), with the same fixed headline columns as every other
run of its kind, and Lightning writes none: `configs/base.yaml` turns off the logger's
`default_hp_metric`, whose `hp_metric = -1` placeholder session would otherwise come first in
the folder, and TensorBoard keeps a run's first session only.
"""

from __future__ import annotations

from dataclasses import fields
from pathlib import Path
from typing import Any

import lightning as L
import torch
from lightning.pytorch.loggers import TensorBoardLogger
from lightning.pytorch.trainer.states import TrainerFn
from torch.utils.tensorboard.summary import hparams

from lit_gradcam.cam.spec import CamSpec
from lit_gradcam.evaluation.tables import Headline
from lit_gradcam.method.pipeline import BatchPipeline


def evaluation_step(trainer: L.Trainer) -> int:
    """The step an evaluation logs at: while fitting, the trainer's global step; when testing or
    validating a checkpoint, the global step it was saved at, which Lightning does not restore
    outside fit (it loads the loops' progress only to resume training), so that tests of
    checkpoints from steps 350 and 700 sit at 350 and 700, not both at 0."""
    path = trainer.ckpt_path
    if trainer.state.fn == TrainerFn.FITTING or path is None or not Path(path).is_file():
        return trainer.global_step
    # mapped, not read: one number is wanted, and Lightning has just loaded the file this way
    checkpoint = torch.load(path, weights_only=True, map_location="cpu", mmap=True)
    return int(checkpoint["global_step"])


def headline_scalars(headline: Headline, prefix: str, accuracy_key: str) -> dict[str, float | None]:
    """The HPARAMS tab's metric columns, keyed by their scalar tags: the classifier's accuracy
    (the model's own `test/acc` or `val/acc`), then `{prefix}/headline/...` for each of the
    headline's `scores`. None where a run has no such value: the column stays, its cell is
    empty."""
    scores = {f"{prefix}/headline/{name}": value for name, value in headline.scores().items()}
    return {accuracy_key: headline.accuracy, **scores}


def log_hparams(
    trainer: L.Trainer,
    pl_module: L.LightningModule,
    pipeline: BatchPipeline,
    metric_tags: list[str],
    step: int,
) -> None:
    """One HPARAMS session in the run's own folder: the settings that tell evaluation runs apart
    (checkpoint, data folder, CAM, segmenters; the model's hyper-parameters after them) beside
    `metric_tags`, scalars logged in the same folder.

    TensorBoard shows the first five settings by name in cells of about 16 characters, then the
    metrics; these are named so that those five are the checkpoint, the data, the method and
    the model's architecture, each short. The strategies are left out: every one of them is a
    row of the run's tables, and their list would not fit a cell. Written as Lightning's
    `log_hyperparams` writes a session, but not through it: that would also merge these keys
    into the run's hparams.yaml, which `load_from_checkpoint(hparams_file=...)` reads back as
    the model's init arguments.
    """
    if not isinstance(trainer.logger, TensorBoardLogger):
        return
    params: dict[str, Any] = {
        "checkpoint": trainer.ckpt_path,
        "data": trainer.datamodule.hparams.get("root") if trainer.datamodule else None,
        "method": {
            "cam": _describe_cam(pipeline.cam),
            "segmenters": ", ".join(s.name for s in pipeline.segmenters),
        },
        "model": dict(pl_module.hparams),
    }
    writer = trainer.logger.experiment._get_file_writer()  # the run's folder, as Lightning's
    for summary in hparams(_flat_hparams(params), dict.fromkeys(metric_tags)):
        writer.add_summary(summary, step)


def _describe_cam(spec: CamSpec) -> str:
    """The CAM in one cell: method and layers, then each setting that is not the default."""
    changed = [
        f"{field.name}={getattr(spec, field.name)}"
        for field in fields(spec)
        if field.name not in ("method", "layers") and getattr(spec, field.name) != field.default
    ]
    return " ".join([spec.method, "+".join(spec.layers), *changed])


def _flat_hparams(params: dict[str, Any], prefix: str = "") -> dict[str, int | float | str]:
    """Nested settings keyed ``a/b``, private (``_``) keys left out; numbers stay numbers and
    everything else (flags, None, lists) becomes text, which TensorBoard shows as written."""
    flat: dict[str, int | float | str] = {}
    for key, value in params.items():
        if key.startswith("_"):
            continue
        if isinstance(value, dict):
            flat.update(_flat_hparams(value, f"{prefix}{key}/"))
        else:
            number = isinstance(value, int | float) and not isinstance(value, bool)
            flat[f"{prefix}{key}"] = value if number else str(value)
    return flat
