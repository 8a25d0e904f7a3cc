"""Stopping a run: SIGTERM (`docker stop`, an eviction, a scheduler's preemption) or Ctrl-C ends
fit, validate, test and predict at the next step or batch, with a non-zero status and one line
that says where it stopped.

Lightning does the stopping: while a Trainer's loops run, its handler marks SIGTERM and the
loops raise `SIGTERMException` at the next step (fit) or batch (validate, test), calling every
callback's `on_exception` on the way out. Around that, this module

- installs the process's own SIGTERM handler, which Lightning's calls as well; outside a
  Trainer's loops (setup, data generation, between a nested Trainer's run and the run's own) it
  stops the run at once, as there is no step to finish;
- turns a first Ctrl-C inside a Trainer's loops into Lightning's SIGTERM stop (a second one
  interrupts at once, through Lightning's own KeyboardInterrupt handling);
- adds `StopAtBoundary` to the CLI's Trainer: it stops predict at the next batch (Lightning's
  predict loop never looks), stops a stage whose signal came while a nested Trainer ran (the
  no-shape phase, the shapes weights' build), and has fit save `last.ckpt` at the step reached
  through `ModelCheckpoint`'s own save of it.
"""

from __future__ import annotations

import contextlib
import shlex
import signal
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from types import FrameType
from typing import Any

import lightning as L
from lightning.pytorch.callbacks import ModelCheckpoint
from lightning.pytorch.utilities.exceptions import SIGTERMException


@dataclass
class _Stop:
    """The stop of this process (signal handlers are process-wide): the first stop signal, and
    what the run said about where it stopped ("" on a rank other than 0, which stays quiet)."""

    signal: signal.Signals | None = None
    summary: str | None = None


_STOP = _Stop()


@contextlib.contextmanager
def stop_signals() -> Iterator[None]:
    """Handle SIGTERM and SIGINT as this module says while the CLI runs; a stopped run ends with
    its line on stderr and the status of the signal (128 + its number: 143, 130)."""
    _STOP.signal = _STOP.summary = None
    previous = {name: signal.getsignal(name) for name in (signal.SIGTERM, signal.SIGINT)}
    signal.signal(signal.SIGTERM, _on_sigterm)
    signal.signal(signal.SIGINT, _on_sigint)
    try:
        yield
    except (SIGTERMException, KeyboardInterrupt) as stop:
        ctrl_c = isinstance(stop, KeyboardInterrupt)
        stopped_by = _STOP.signal or (signal.SIGINT if ctrl_c else signal.SIGTERM)
        if _STOP.summary != "":
            where = _STOP.summary or "while the run was being set up, before its first step"
            print(f"stopped by {stopped_by.name}: {where}", file=sys.stderr, flush=True)
        sys.exit(128 + stopped_by)
    finally:
        for name, handler in previous.items():
            signal.signal(name, handler)


def _lightning_is_handling() -> bool:
    """Whether a Trainer's loops run: Lightning's SIGTERM handler (which calls ours) is set."""
    return signal.getsignal(signal.SIGTERM) is not _on_sigterm


def _on_sigterm(signum: int, frame: FrameType | None) -> None:
    _STOP.signal = _STOP.signal or signal.SIGTERM
    if not _lightning_is_handling():
        raise SIGTERMException


def _on_sigint(signum: int, frame: FrameType | None) -> None:
    if _STOP.signal is None and _lightning_is_handling():
        _STOP.signal = signal.SIGINT
        print("Ctrl-C: stopping at the next step (again to stop at once)", file=sys.stderr)
        signal.raise_signal(signal.SIGTERM)  # Lightning's stop at the next step
        return
    _STOP.signal = _STOP.signal or signal.SIGINT
    raise KeyboardInterrupt


class StopAtBoundary(L.Callback):
    """The CLI Trainer's part of a stop (see the module docstring).

    Args:
        words: the run's command-line words, from which the line's resume command is made.
    """

    def __init__(self, words: Sequence[str] | None) -> None:
        self.words = words
        self._training = False  # fit's loop has begun: its state is whole from here on

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._training = True
        self._stop_if_requested(trainer)

    def on_validation_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._stop_if_requested(trainer)

    def on_test_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._stop_if_requested(trainer)

    def on_predict_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._stop_if_requested(trainer)

    def on_predict_batch_end(self, trainer: L.Trainer, *args: Any, **kwargs: Any) -> None:
        self._stop_if_requested(trainer)

    @staticmethod
    def _stop_if_requested(trainer: L.Trainer) -> None:
        """Stop on Lightning's mark of SIGTERM, or on a signal that came while another Trainer
        ran (whose mark went with it)."""
        if trainer.received_sigterm or _STOP.signal is not None:
            raise SIGTERMException

    def on_exception(
        self, trainer: L.Trainer, pl_module: L.LightningModule, exception: BaseException
    ) -> None:
        """On a stop, fit saves its last checkpoint; every rank says where it stopped (rank 0
        aloud)."""
        if not isinstance(exception, SIGTERMException):
            return
        fit = trainer.state.fn == "fit"
        summary = self._fit_summary(trainer) if fit else _eval_summary(trainer)
        _STOP.summary = summary if trainer.is_global_zero else ""

    def _fit_summary(self, trainer: L.Trainer) -> str:
        """Save `last.ckpt` at the step reached, once fit's loop has begun and taken a step."""
        step = trainer.global_step
        of = f" of {trainer.max_steps}" if trainer.max_steps > 0 else ""
        if not self._training or step == 0:
            return "fit, before its first step; no checkpoint saved"
        checkpoint = trainer.checkpoint_callback
        if not isinstance(checkpoint, ModelCheckpoint) or not checkpoint.save_last:
            return f"fit, at step {step}{of}; no checkpoint saved (checkpoint.save_last is off)"
        saved = save_last(trainer, checkpoint)
        return f"fit, at step {step}{of}; saved {saved}; resume: {self._resume()}"

    def _resume(self) -> str:
        """The run's command with `--ckpt_path last` in place of any checkpoint it named."""
        if self.words is None:
            return "the same command with --ckpt_path last"
        kept: list[str] = []
        skip = False
        for word in self.words:
            if skip:
                skip = False
            elif word == "--ckpt_path":
                skip = True
            elif not word.startswith("--ckpt_path="):
                kept.append(word)
        return shlex.join(["python", "main.py", *kept, "--ckpt_path", "last"])


def save_last(trainer: L.Trainer, checkpoint: ModelCheckpoint) -> str:
    """`ModelCheckpoint`'s own save of `last.ckpt` (its name and version, its state, the
    Trainer's atomic write), as a file even where `save_last: link` would link an older one."""
    mode, checkpoint.save_last = checkpoint.save_last, True
    try:
        checkpoint._save_last_checkpoint(trainer, checkpoint._monitor_candidates(trainer))
    finally:
        checkpoint.save_last = mode
    return checkpoint.last_model_path


def _eval_summary(trainer: L.Trainer) -> str:
    """Where validate, test or predict stopped; they write their results only at their end."""
    stage = trainer.state.fn.value
    loop, batches, nothing = {
        "validate": (trainer.validate_loop, trainer.num_val_batches, "no results written"),
        "test": (trainer.test_loop, trainer.num_test_batches, "no results written"),
        "predict": (
            trainer.predict_loop,
            trainer.num_predict_batches,
            "no predictions written; the output folder is as it was",
        ),
    }[stage]
    done = loop.batch_progress.current.processed
    return f"{stage}, after {done} of {sum(batches)} batches; {nothing}"
