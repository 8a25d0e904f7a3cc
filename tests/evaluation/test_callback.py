"""The evaluation callback end to end on tiny hand-made masks, read back from disk.

A fixed-mask segmenter and the centre-point strategy make every metric computable by hand:
GT A (8x8 around the centre) vs predicted mask shifted 4 px right -> IoU 1/3, point inside;
GT B (8x8 in the corner) -> IoU 0, point outside; one image with an empty GT is excluded.
"""

import json
import math
from pathlib import Path

import lightning as L
import pytest
import torch
from lightning.pytorch.loggers import CSVLogger, TensorBoardLogger
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from torch.utils.data import DataLoader, TensorDataset

from lit_gradcam.classifier import ShapeClassifier
from lit_gradcam.evaluation.callback import SegmentationEvaluation
from lit_gradcam.prompts.strategies import CenterPoint, GroundTruthCentroid
from lit_gradcam.segmenters.base import Prompts, Segmenter

H, W = 48, 64


def _rect(top: int, left: int, size: int = 8) -> torch.Tensor:
    mask = torch.zeros(H, W, dtype=torch.bool)
    mask[top : top + size, left : left + size] = True
    return mask


class FixedMaskSegmenter(Segmenter):
    """Always predicts rows 20-27, columns 32-39; counts its calls."""

    name = "fixed"

    def __init__(self) -> None:
        self.embed_calls = 0

    def embed(self, images: torch.Tensor) -> int:
        self.embed_calls += 1
        return images.shape[0]

    def predict(self, state: int, prompts: Prompts) -> tuple[torch.Tensor, torch.Tensor]:
        return _rect(20, 32).expand(state, H, W).clone(), torch.ones(state)


def _loader() -> DataLoader:
    gt = torch.stack([_rect(20, 28), _rect(20, 28), _rect(0, 0), torch.zeros(H, W, dtype=bool)])
    images = torch.randn(4, 3, H, W, generator=torch.Generator().manual_seed(0))
    return DataLoader(TensorDataset(images, torch.tensor([0, 1, 2, 3]), gt), batch_size=2)


def _run(tmp_path: Path, logger) -> tuple[L.Trainer, SegmentationEvaluation, FixedMaskSegmenter]:
    segmenter = FixedMaskSegmenter()
    callback = SegmentationEvaluation(
        segmenters=[segmenter],
        strategies=[CenterPoint(), GroundTruthCentroid()],
        num_logged_images=3,
    )
    trainer = L.Trainer(
        inference_mode=False,
        callbacks=[callback],
        logger=logger,
        default_root_dir=tmp_path,
        enable_progress_bar=False,
        enable_model_summary=False,
    )
    torch.manual_seed(0)
    trainer.test(ShapeClassifier(), dataloaders=_loader())
    return trainer, callback, segmenter


def test_metrics_match_hand_computed_values_in_json_and_tensorboard(tmp_path: Path) -> None:
    trainer, _, segmenter = _run(tmp_path, TensorBoardLogger(tmp_path, name="run"))
    log_dir = Path(trainer.log_dir)
    results = json.loads((log_dir / "results.json").read_text())

    far = math.hypot(32 - 3.5, 24 - 3.5)  # centre point to GT B's centroid
    expected = {
        "iou": (1 / 3 + 1 / 3 + 0) / 3,
        "iou_pixel": (32 + 32 + 0) / (96 + 96 + 128),
        "hit_rate_fg": 2 / 3,
        "distance_fg": (2 * math.hypot(0.5, 0.5) + far) / 3,
    }
    metrics = results["metrics"]
    for name, value in expected.items():
        assert metrics[f"eval/fixed/CenterPoint/{name}"] == pytest.approx(value, abs=1e-6)
    assert "eval/fixed/CenterPoint/hit_rate_bg" not in metrics  # no background points
    assert metrics["eval/fixed/GroundTruthCentroid/hit_rate_fg"] == pytest.approx(1.0)
    assert results["num_images"] == 4 and results["num_empty_gt"] == 1
    oracle = next(r for r in results["rows"] if r["strategy"] == "GroundTruthCentroid")
    assert oracle["uses_ground_truth"] is True
    assert segmenter.embed_calls == 2  # once per batch, shared by both strategies

    table = (log_dir / "results.md").read_text()
    assert "| fixed | CenterPoint | 0.667 | 0.222 | 0.200 |" in table
    assert "GroundTruthCentroid (oracle: uses GT)" in table

    events = EventAccumulator(str(log_dir), size_guidance={"images": 0, "tensors": 0})
    events.Reload()
    scalars = {tag: events.Scalars(tag)[-1].value for tag in events.Tags()["scalars"]}
    for name, value in expected.items():
        assert scalars[f"eval/fixed/CenterPoint/{name}"] == pytest.approx(value, abs=1e-6)
    assert "test/acc" in scalars
    assert set(events.Tags()["images"]) == {
        "eval/fixed/CenterPoint",
        "eval/fixed/GroundTruthCentroid",
    }
    grid = events.Images("eval/fixed/CenterPoint")[-1]
    assert grid.height > 3 * H * 4  # three logged images, panels upscaled 4x
    assert "eval/results/text_summary" in events.Tags()["tensors"]


def test_other_loggers_get_files_but_no_grids(tmp_path: Path) -> None:
    trainer, _, _ = _run(tmp_path, CSVLogger(tmp_path, name="csv"))
    results = json.loads((Path(trainer.log_dir) / "results.json").read_text())
    assert results["metrics"]["eval/fixed/CenterPoint/hit_rate_fg"] == pytest.approx(2 / 3)


def test_validate_and_periodic_validation_evaluate_the_val_loader(tmp_path: Path) -> None:
    """`main.py validate` (the sweep) and `every_n_val_epochs` score the validation split."""
    callback = SegmentationEvaluation(
        segmenters=[FixedMaskSegmenter()], strategies=[CenterPoint()], every_n_val_epochs=2
    )
    trainer = L.Trainer(
        inference_mode=False,
        callbacks=[callback],
        logger=CSVLogger(tmp_path, name="val"),
        max_epochs=2,
        num_sanity_val_steps=0,
        enable_progress_bar=False,
        enable_checkpointing=False,
        enable_model_summary=False,
    )
    model = ShapeClassifier(one_cycle=False)
    trainer.fit(model, train_dataloaders=_loader(), val_dataloaders=_loader())
    log_dir = Path(trainer.log_dir)
    # every second epoch only: epoch index 1, not 0
    assert [p.name for p in log_dir.glob("results_val*.json")] == ["results_val_epoch1.json"]
    trainer.validate(model, dataloaders=_loader())
    results = json.loads((Path(trainer.log_dir) / "results_val.json").read_text())
    iou = results["metrics"]["val_eval/fixed/CenterPoint/iou"]
    assert iou == pytest.approx((1 / 3 + 1 / 3 + 0) / 3, abs=1e-6)
    assert results["num_images"] == 4
