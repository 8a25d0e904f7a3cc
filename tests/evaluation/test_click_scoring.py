"""`ClickScoring` on GrabCut: each segmenter's click scores and each row's worth in clicks equal
the clicker run image by image, with empty-ground-truth images left out."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import lightning as L
import numpy as np
import pytest
import torch
from lightning.pytorch.loggers import TensorBoardLogger
from torch import Tensor
from torch.utils.data import DataLoader, TensorDataset

from lit_gradcam.classifier import ShapeClassifier
from lit_gradcam.evaluation.callback import SegmentationEvaluation
from lit_gradcam.evaluation.click_metrics import worth_clicks
from lit_gradcam.evaluation.click_scoring import MAX_CLICKS, ClickScoring
from lit_gradcam.evaluation.clicker import click_ious
from lit_gradcam.method.pipeline import BatchPipeline
from lit_gradcam.method.results import PipelineOutput, StrategyResult
from lit_gradcam.prompt_types import Prompts
from lit_gradcam.prompts.strategies import CenterPoint
from lit_gradcam.segmenters.base import Segmenter
from lit_gradcam.segmenters.grabcut import GrabCutSegmenter

H, W = 40, 48


def _scene() -> tuple[Tensor, Tensor]:
    """Four noisy images, three with a flat-coloured ellipse or square, one with nothing."""
    rng = np.random.default_rng(3)
    yy, xx = np.mgrid[:H, :W]
    shapes = [
        ((yy - 20) / 9) ** 2 + ((xx - 22) / 13) ** 2 <= 1,
        (abs(yy - 15) <= 8) & (abs(xx - 30) <= 8),
        np.zeros((H, W), bool),
        ((yy - 25) / 6) ** 2 + ((xx - 14) / 10) ** 2 <= 1,
    ]
    images = rng.integers(60, 120, size=(4, H, W, 3))
    for image, shape in zip(images, shapes, strict=True):
        image[shape] = (200, 40, 40)
    noisy = np.clip(images + rng.normal(0, 25, images.shape), 0, 255).astype(np.uint8)
    return torch.from_numpy(noisy).permute(0, 3, 1, 2), torch.from_numpy(np.stack(shapes))


def _output(segmenter: GrabCutSegmenter, images: Tensor, prompts: Prompts) -> PipelineOutput:
    state = segmenter.embed(images)
    heat = torch.rand(len(images), H, W, generator=torch.Generator().manual_seed(0))
    masks, scores = segmenter.predict(state, prompts)
    result = StrategyResult(heat, prompts, masks, scores, prompts)
    return PipelineOutput(
        images, torch.zeros(len(images), 5), {"grabcut/Corner": result}, states={"grabcut": state}
    )


def test_click_scores_and_worth_equal_the_clicker_image_by_image() -> None:
    images, gt = _scene()
    segmenter = GrabCutSegmenter()
    # a deliberately poor no-click prompt: a point near each image's corner
    prompts = Prompts(torch.tensor([[[3.0, 3.0]]] * 4), torch.ones(4, 1, dtype=torch.long))
    scoring = ClickScoring(["grabcut"], ["Corner"])
    output = _output(segmenter, images, prompts)
    scoring.update(output, [segmenter], gt)

    kept = torch.tensor([0, 1, 3])  # the empty ground truth is left out
    state = segmenter.select(segmenter.embed(images), kept)
    curves = click_ious(segmenter, state, gt[kept], MAX_CLICKS, always_clicks=5).numpy()
    filled = curves.copy()
    for column in range(2, curves.shape[1]):  # a stopped image keeps its last mask
        filled[:, column] = np.where(
            np.isnan(filled[:, column]), filled[:, column - 1], filled[:, column]
        )
    expected_miou = filled[:, 1:6].mean(0)

    rows = [{"segmenter": "grabcut", "strategy": "Corner", "iou": 0.5}]
    summary, scalars = scoring.annotate(rows, prefix="eval")
    got = [summary["grabcut"][f"miou_{k}"] for k in range(1, 6)]
    np.testing.assert_allclose(got, expected_miou, atol=1e-9)
    reached = filled[:, 1:] >= 0.90
    noc90 = np.where(reached.any(1), reached.argmax(1) + 1, MAX_CLICKS).mean()
    assert summary["grabcut"]["noc90"] == pytest.approx(noc90)
    assert rows[0]["worth_clicks"] == pytest.approx(worth_clicks(0.5, expected_miou.tolist()))
    assert scalars["eval/grabcut/Corner/worth_clicks"] == rows[0]["worth_clicks"]
    assert scalars["eval/grabcut/clicks/miou_1"] == pytest.approx(expected_miou[0])

    started = click_ious(
        segmenter, state, gt[kept], MAX_CLICKS, always_clicks=0,
        initial=Prompts(prompts.points[kept], prompts.labels[kept]),
    ).numpy()  # fmt: skip
    reached = started >= 0.90  # column 0 is the start, column k after k clicks
    at_90 = np.where(reached.any(1), reached.argmax(1), MAX_CLICKS)
    assert rows[0]["noc90_from_start"] == pytest.approx(np.mean(at_90))
    assert rows[0]["noc90_from_start"] > 0  # a corner point is worth less than a finished mask


class FixedRectangle(Segmenter):
    """Always rows 20-27, columns 32-39, whatever the prompts: no click improves it."""

    name = "fixed"

    def embed(self, images: Tensor) -> int:
        return images.shape[0]

    def select(self, state: int, index: Tensor) -> int:
        return len(index)

    def predict(
        self, state: int, prompts: Prompts, heatmaps: Tensor | None = None
    ) -> tuple[Tensor, Tensor]:
        return _square(20, 32).expand(state, H, W).clone(), torch.ones(state)


def _square(top: int, left: int) -> Tensor:
    mask = torch.zeros(H, W, dtype=torch.bool)
    mask[top : top + 8, left : left + 8] = True
    return mask


def test_the_evaluation_writes_clicks_worked_out_by_hand(
    tmp_path: Path, make_trainer: Callable[..., L.Trainer]
) -> None:
    """GT A twice (IoU 1/3 with the fixed square), GT B once (IoU 0), one empty GT (left out):
    every click leaves the mask as it is, so mIoU@k = 2/9, NoC = 20, and a strategy of IoU 2/9
    is worth exactly one click."""
    gt = [_square(20, 28), _square(20, 28), _square(0, 0), torch.zeros(H, W, dtype=torch.bool)]
    images = torch.randn(4, 3, H, W, generator=torch.Generator().manual_seed(0))
    loader = DataLoader(TensorDataset(images, torch.arange(4) % 5, torch.stack(gt)), batch_size=2)
    pipeline = BatchPipeline([FixedRectangle()], [CenterPoint()])
    callback = SegmentationEvaluation(pipeline, clicks="all")
    logger = TensorBoardLogger(tmp_path, name="run")
    trainer = make_trainer(inference_mode=False, callbacks=[callback], logger=logger)
    with pytest.warns(UserWarning, match="empty ground-truth"):
        trainer.test(ShapeClassifier(), dataloaders=loader)
    results = json.loads((Path(trainer.log_dir) / "results.json").read_text())

    clicks = results["clicks"]["fixed"]
    for k in range(1, 6):
        assert clicks[f"miou_{k}"] == pytest.approx(2 / 9)
    assert clicks["noc85"] == clicks["noc90"] == MAX_CLICKS
    (row,) = results["rows"]
    assert row["iou"] == pytest.approx(2 / 9)
    assert row["worth_clicks"] == pytest.approx(1.0)
    assert row["noc90_from_start"] == MAX_CLICKS
    assert results["metrics"]["eval/fixed/CenterPoint/worth_clicks"] == pytest.approx(1.0)
    assert results["metrics"]["eval/fixed/clicks/noc90"] == MAX_CLICKS
