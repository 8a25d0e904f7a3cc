"""A pause at one step or batch of a run of the real CLI, where a test signals it.

`PauseAt` pauses the CLI's own Trainer (`--trainer.callbacks+=helpers.pausing.PauseAt`);
`python -m helpers.pausing PHASE MARKER STEP WORDS...` runs `lit_gradcam.cli.main(WORDS)` paused
in a Trainer that fit nests: the no-shape flag's phase (`no_shape`) or the shapes weights' build
(`shapes`, with `TINY_RECIPE`). Either writes MARKER when it pauses (the test's cue), then waits
until Lightning has marked the signal.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any

import lightning as L

from lit_gradcam.classifier import ShapeClassifier, shapes_weights
from lit_gradcam.classifier.presence import PresenceTraining
from lit_gradcam.cli import main

#: The shapes weights' recipe of `python -m helpers.pausing shapes`: a build of a few seconds.
TINY_RECIPE = shapes_weights.ShapesPretraining(train_size=10, val_size=5, max_steps=6, batch_size=5)


def pause(trainer: L.Trainer, marker: Path) -> None:
    """Write `marker` (once per run), then wait for Lightning's mark of a stop signal."""
    if marker.exists():
        return
    marker.write_text(f"{trainer.global_step}\n")
    deadline = time.monotonic() + 60
    while not trainer.received_sigterm and time.monotonic() < deadline:
        time.sleep(0.02)


class PauseAt(L.Callback):
    """Pauses at training step `step` (fit) or after batch `step` (validate, test, predict)."""

    def __init__(self, marker: str, step: int = 1) -> None:
        self.marker, self.step = Path(marker), step

    def on_train_batch_end(self, trainer: L.Trainer, *args: Any) -> None:
        if trainer.global_step == self.step:
            pause(trainer, self.marker)

    def on_validation_batch_end(self, trainer: L.Trainer, *args: Any) -> None:
        self._evaluated(trainer, args[3])

    def on_test_batch_end(self, trainer: L.Trainer, *args: Any) -> None:
        self._evaluated(trainer, args[3])

    def on_predict_batch_end(self, trainer: L.Trainer, *args: Any) -> None:
        self._evaluated(trainer, args[3])

    def _evaluated(self, trainer: L.Trainer, batch_idx: int) -> None:
        if trainer.state.fn != "fit" and batch_idx + 1 == self.step:
            pause(trainer, self.marker)


def _pause_module(
    module: type[L.LightningModule], marker: Path, step: int, nested_only: bool
) -> None:
    """`module`'s runs pause at `step` (only those without a checkpoint callback: the build)."""

    def on_train_batch_end(self: L.LightningModule, *args: Any) -> None:
        nested = self.trainer.checkpoint_callback is None
        if self.trainer.global_step == step and (nested or not nested_only):
            pause(self.trainer, marker)

    module.on_train_batch_end = on_train_batch_end


def run(phase: str, marker: str, step: str, words: list[str]) -> None:
    """`main(words)`, paused at `step` of the nested Trainer `phase` names."""
    if phase == "no_shape":
        _pause_module(PresenceTraining, Path(marker), int(step), nested_only=False)
    else:
        shapes_weights.DEFAULT_PRETRAINING = TINY_RECIPE
        _pause_module(ShapeClassifier, Path(marker), int(step), nested_only=True)
    main(words)


if __name__ == "__main__":
    run(*sys.argv[1:4], sys.argv[4:])
