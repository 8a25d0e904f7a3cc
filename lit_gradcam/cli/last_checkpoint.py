"""`FinalLastCheckpoint`: after fit, `last.ckpt` holds the run's final step.

Lightning refreshes `last.ckpt` at a validation only when a top-k checkpoint is saved at the
same step, so a run whose final validation does not improve the monitored metric would keep an
earlier step in it, and `--ckpt_path last` would test that model as if it were the run's end.
"""

from __future__ import annotations

import lightning as L
from lightning.pytorch.callbacks import ModelCheckpoint

from lit_gradcam.cli.stopping import save_last


class FinalLastCheckpoint(L.Callback):
    """Saves `last.ckpt` when fit ends unless the checkpoint callback saved the final step."""

    def on_train_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        checkpoint = trainer.checkpoint_callback
        if not isinstance(checkpoint, ModelCheckpoint) or not checkpoint.save_last:
            return
        if checkpoint._last_global_step_saved != trainer.global_step:
            save_last(trainer, checkpoint)
