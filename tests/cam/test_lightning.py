"""`compute_heatmaps` inside Lightning's test loop, where the evaluation callback runs it."""

from __future__ import annotations

import lightning as L
import pytest
import torch
from torch import Tensor, nn
from torch.utils.data import DataLoader, TensorDataset

from lit_gradcam.cam import CamSpec, compute_heatmaps


class _Mapper(L.LightningModule):
    """Maps each test batch, as the evaluation callback does."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model
        self.maps: list[Tensor] = []

    def test_step(self, batch: list[Tensor], batch_idx: int) -> None:
        maps, _ = compute_heatmaps(self.model, batch[0], CamSpec(flip_average=True))
        self.maps.append(maps)


def _test(trainer: L.Trainer, module: _Mapper, images: Tensor) -> None:
    trainer.test(module, DataLoader(TensorDataset(images), batch_size=3), verbose=False)


def test_runs_in_the_test_loop_without_inference_mode(resnet, images, make_trainer) -> None:
    module = _Mapper(resnet)
    _test(make_trainer(inference_mode=False), module, images)
    expected, _ = compute_heatmaps(resnet, images, CamSpec(flip_average=True))
    torch.testing.assert_close(torch.cat(module.maps), expected, atol=1e-5, rtol=0)
    assert all(p.grad is None for p in resnet.parameters())


def test_inference_mode_gets_a_clear_error(resnet, images, make_trainer) -> None:
    with pytest.raises(RuntimeError, match=r"Trainer\(inference_mode=False\)"):
        _test(make_trainer(inference_mode=True), _Mapper(resnet), images)
