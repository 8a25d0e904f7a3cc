"""The TensorBoard HPARAMS record of an evaluation: the run's settings beside its metrics."""

from __future__ import annotations

from typing import Any

import lightning as L
from lightning.pytorch.loggers import TensorBoardLogger

from lit_gradcam.method.pipeline import BatchPipeline


def log_hparams(
    trainer: L.Trainer,
    pl_module: L.LightningModule,
    pipeline: BatchPipeline,
    metrics: dict[str, float],
    run_name: str,
) -> None:
    """The run's settings with this evaluation's metrics, for TensorBoard's HPARAMS tab.

    Written by `SummaryWriter.add_hparams` as a run of its own inside the log dir, because
    TensorBoard keeps only the first hyper-parameter record of a run and Lightning's logger
    writes one (its `hp_metric` placeholder) when the run starts.
    """
    if not isinstance(trainer.logger, TensorBoardLogger):
        return
    described = pipeline.describe()
    params: dict[str, Any] = {
        "model": dict(pl_module.hparams),
        "method": {
            "cam": described["cam"],
            "segmenters": ", ".join(s.name for s in pipeline.segmenters),
            "strategies": ", ".join(s.name for s in pipeline.strategies),
        },
        "checkpoint": trainer.ckpt_path,
    }
    if trainer.datamodule is not None:
        params["data"] = dict(trainer.datamodule.hparams)
    trainer.logger.experiment.add_hparams(
        _flat_hparams(params), metrics, run_name=run_name, global_step=trainer.global_step
    )


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
