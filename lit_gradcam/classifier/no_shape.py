"""`NoShapeFlag`: says which `predict` images most likely hold none of the classes.

A callback of the classifier's runs, so the classifier itself does one job. When `fit` starts it
trains a `ShapePresence` net in a short phase of its own (`PresenceTraining`, a single-device
run on the datamodule's training split: its own optimizer and schedule, nothing shared with the
ResNet's), then calibrates a threshold at each of fit's validations: the `quantile` of the
presence scores of the validation images that hold a shape (all of them, but in a folder with
images of no class). The net and threshold live in every checkpoint fit saves (the callback's
state), so `predict --ckpt_path ...` flags from one command, and a resumed fit does not train
the net again.

Under DDP the phase runs on rank 0 and its weights are broadcast; the validation scores of all
ranks are gathered before the quantile is taken, so the threshold is the one-process one.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import lightning as L
import torch
from torch import Tensor
from torchmetrics.aggregation import CatMetric

from lit_gradcam.classifier.presence import PresenceTraining, ShapePresence
from lit_gradcam.classifier.schedule import configured_steps
from lit_gradcam.errors import ConfigError, require_at_least


class NoShapeFlag(L.Callback):
    """Trains the presence net when fit starts, calibrates its threshold, flags images.

    Args:
        steps: optimizer steps of the presence phase; None: as many as the classifier's run as
            configured (`schedule.configured_steps`: not the longer run a fresh head gets, as
            the presence net has no new head to learn); 0 turns the flag off.
        quantile: share of the validation images that hold a shape which the flag would
            mark: the threshold is that quantile of their presence scores. A larger share flags
            more of the images without a shape, and more of those with one.
        lr: peak learning rate of the phase's one-cycle AdamW.
        weight_decay: the phase's AdamW weight decay.
        seed: seed of the net's initial weights and of its jitter; the phase runs on a forked
            random state, so the classifier's own draws are the same with or without it.
    """

    def __init__(
        self,
        steps: int | None = None,
        quantile: float = 0.015,
        lr: float = 1e-3,
        weight_decay: float = 0.05,
        seed: int = 0,
    ) -> None:
        require_at_least("no_shape", 0, steps=steps or 0, weight_decay=weight_decay)
        if not 0 <= quantile < 1:
            raise ConfigError(f"no_shape.quantile must be in [0, 1), got {quantile}")
        if lr <= 0:
            raise ConfigError(f"no_shape.lr must be > 0, got {lr}")
        self.steps, self.quantile = steps, quantile
        self.lr, self.weight_decay, self.seed = lr, weight_decay, seed
        self.net: ShapePresence | None = None
        self.threshold = float("-inf")
        self._scores = CatMetric()

    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        self._scores.to(pl_module.device)  # a callback's metric does not move with the module

    def on_fit_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        """Train the net, unless the flag is off or a resumed checkpoint already holds it."""
        if self.steps == 0 or self.net is not None:
            return
        state = self._train(trainer, pl_module) if trainer.is_global_zero else None
        self._load_net(trainer.strategy.broadcast(state, src=0))
        self.net.to(pl_module.device)

    def _train(self, trainer: L.Trainer, pl_module: L.LightningModule) -> dict[str, Tensor]:
        """The presence phase on this process's device; the net's weights, on the CPU."""
        device = pl_module.device
        devices = [device.index] if device.type == "cuda" else 1
        with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
            torch.manual_seed(self.seed)
            net = ShapePresence()
            phase = L.Trainer(
                max_steps=self.steps or configured_steps(trainer),
                max_epochs=-1,
                accelerator=device.type,
                devices=devices,
                precision=trainer.precision,
                logger=False,
                enable_checkpointing=False,
                enable_model_summary=False,
                enable_progress_bar=trainer.progress_bar_callback is not None,
                limit_val_batches=0,
                default_root_dir=trainer.default_root_dir,
            )
            phase.fit(
                PresenceTraining(net, self.lr, self.weight_decay, self.seed),
                train_dataloaders=trainer.datamodule.train_dataloader(),
            )
        return _cpu_state(net)

    def on_validation_batch_end(
        self,
        trainer: L.Trainer,
        pl_module: L.LightningModule,
        outputs: Any,
        batch: tuple[Tensor, Tensor, Tensor],
        batch_idx: int,
        dataloader_idx: int = 0,
    ) -> None:
        if self.net is not None and trainer.state.fn == "fit" and not trainer.sanity_checking:
            images, targets = batch[0], batch[1]
            if targets.ndim == 2:  # multi-hot: images of no class are not the ones to calibrate on
                images = images[targets.bool().any(1)]
            if len(images):
                self._scores.update(self.scores(images))

    def on_validation_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        """Calibrate on this validation's scores, every rank's."""
        if not self._scores.update_called:
            return
        self.calibrate(self._scores.compute())
        self._scores.reset()
        pl_module.log("no_shape/threshold", self.threshold)

    def calibrate(self, scores: Tensor) -> None:
        """Set the threshold to the `quantile` of presence scores of images that hold a shape."""
        self.threshold = torch.quantile(scores.flatten().float(), self.quantile).item()

    def scores(self, images: Tensor) -> Tensor:
        """Per image, the presence net's score (`ShapePresence.score`) of normalised images."""
        if self.net is None:
            raise RuntimeError("the no-shape flag's net is not trained")
        self.net.to(images.device)
        with torch.no_grad():
            return self.net.score(images)

    def flags(self, images: Tensor) -> Tensor | None:
        """Per image, whether it most likely holds no shape; None where the flag is off or not
        calibrated (a checkpoint saved without it)."""
        if self.net is None or self.threshold == float("-inf"):
            return None
        return self.scores(images) < self.threshold

    def state_dict(self) -> dict[str, Any]:
        if self.net is None:
            return {}
        return {"net": _cpu_state(self.net), "threshold": self.threshold}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        if "net" not in state_dict:
            return
        self._load_net(state_dict["net"])
        self.threshold = float(state_dict["threshold"])

    def _load_net(self, weights: dict[str, Tensor]) -> None:
        """A `ShapePresence` with `weights`, in eval mode, as the flag's net."""
        self.net = ShapePresence()
        self.net.load_state_dict(weights)
        self.net.eval()

    @classmethod
    def from_checkpoint(cls, path: str | Path, **kwargs: Any) -> NoShapeFlag:
        """The flag saved in a classifier checkpoint (untrained if it holds none); `kwargs` are
        the init arguments, e.g. another `quantile` to calibrate with."""
        flag = cls(**kwargs)
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
        flag.load_state_dict(checkpoint.get("callbacks", {}).get(flag.state_key, {}))
        return flag


def _cpu_state(net: ShapePresence) -> dict[str, Tensor]:
    """`net`'s weights on the CPU: what the checkpoint and the DDP broadcast carry."""
    return {key: value.cpu() for key, value in net.state_dict().items()}
