"""A longer fit, at a higher learning rate, when the classifier's head starts afresh.

Pretrained `weights` whose classes are not the folder's keep their trunk and lose their head
(`labels.reset_head`): the run has a new head to learn and trunk features to bend towards
shapes the weights never told apart, which takes more steps than fine-tuning the classes the
weights already know. `fresh_head_steps` says how many times the trainer's `max_steps` such a
run gets, and `fresh_head_lr` how many times `lr` its one-cycle schedule peaks at (the trunk has
more to learn than a fine-tune), so one config serves both: the course's folder keeps its
length and learning rate, a folder of other classes trains longer and harder.
"""

from __future__ import annotations

import lightning as L
from lightning.pytorch.utilities import rank_zero_info

from lit_gradcam.errors import ConfigError


def check_fresh_head(steps: float, lr: float) -> None:
    """ConfigError unless the `steps` factor is at least 1 (a fresh head never trains less) and
    the `lr` factor is positive."""
    if not steps >= 1:
        raise ConfigError(f"model.fresh_head_steps must be >= 1, got {steps}")
    if not lr > 0:
        raise ConfigError(f"model.fresh_head_lr must be > 0, got {lr}")


def fresh_head_length(max_steps: int, factor: float) -> int:
    """The steps a fit whose head starts afresh trains: `factor` x `max_steps`, rounded."""
    return round(max_steps * factor)


def lengthen_fresh_head_run(trainer: L.Trainer, factor: float) -> None:
    """Multiply `trainer`'s `max_steps` by `factor` (rounded), once per trainer, and say so.

    Lightning's own tuner sets the same loop attribute; the one-cycle schedule, the progress
    bar and the last checkpoint all read the new length. A run bounded by epochs only
    (`max_steps` -1) is left as it is.
    """
    loop = trainer.fit_loop.epoch_loop
    if factor == 1 or loop.max_steps <= 0 or getattr(loop, "_fresh_head_from", None) is not None:
        return
    loop._fresh_head_from = loop.max_steps
    loop.max_steps = fresh_head_length(loop.max_steps, factor)
    rank_zero_info(
        f"The classifier's head starts afresh (the folder's classes are not the pretrained "
        f"weights'): training {loop.max_steps} steps, model.fresh_head_steps ({factor:g}) x "
        f"trainer.max_steps ({loop._fresh_head_from})"
    )


def configured_steps(trainer: L.Trainer) -> int:
    """The fit's length as configured: its stepping batches, but the `max_steps` it had before
    `lengthen_fresh_head_run` lengthened it, for a phase that has no new head to learn."""
    configured = getattr(trainer.fit_loop.epoch_loop, "_fresh_head_from", None)
    return int(trainer.estimated_stepping_batches) if configured is None else int(configured)


def fresh_head_lr(lr: float, factor: float) -> float:
    """The learning rate of a fit whose head starts afresh: `factor` x `lr`, and say so."""
    if factor != 1:
        rank_zero_info(
            f"The classifier's head starts afresh: learning rate {lr * factor:g}, "
            f"model.fresh_head_lr ({factor:g}) x model.lr ({lr:g})"
        )
    return lr * factor
