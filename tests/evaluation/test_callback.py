"""The evaluation callback end to end on tiny hand-made masks, read back from disk.

A fixed-mask segmenter and the centre-point strategy make every metric computable by hand:
GT A (8x8 around the centre) vs predicted mask shifted 4 px right -> IoU 1/3, point inside;
GT B (8x8 in the corner) -> IoU 0, point outside; one image with an empty GT is excluded.
"""

import io
import json
import math
from collections.abc import Callable
from pathlib import Path

import lightning as L
import numpy as np
import pytest
import torch
from lightning.pytorch.loggers import CSVLogger, TensorBoardLogger
from PIL import Image
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from tensorboard.plugins.hparams.plugin_data_pb2 import HParamsPluginData
from torch.utils.data import DataLoader, TensorDataset

from lit_gradcam.classifier import ShapeClassifier
from lit_gradcam.evaluation.callback import SegmentationEvaluation
from lit_gradcam.evaluation.charts import BAR_HEIGHT, BAR_LENGTH, CHART_BARS
from lit_gradcam.method.pipeline import BatchPipeline
from lit_gradcam.prompt_types import Prompts
from lit_gradcam.prompts.strategies import (
    CamConsensus,
    CenterPoint,
    GroundTruthBox,
    GroundTruthCentroid,
    WeightedCentroid,
)
from lit_gradcam.segmenters.base import Segmenter

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

    def predict(
        self, state: int, prompts: Prompts, heatmaps: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        return _rect(20, 32).expand(state, H, W).clone(), torch.ones(state)


def _loader(gt: list[torch.Tensor] | None = None) -> DataLoader:
    """Batches of 2 random images with the given GT masks (default: A, A, B and an empty one)."""
    if gt is None:
        gt = [_rect(20, 28), _rect(20, 28), _rect(0, 0), torch.zeros(H, W, dtype=torch.bool)]
    images = torch.randn(len(gt), 3, H, W, generator=torch.Generator().manual_seed(len(gt)))
    labels = torch.arange(len(gt)) % 5
    return DataLoader(TensorDataset(images, labels, torch.stack(gt)), batch_size=2)


def _trainer(
    make_trainer: Callable[..., L.Trainer], callback: SegmentationEvaluation, logger, **kwargs
) -> L.Trainer:
    """A short run with the evaluation callback and `logger` (Grad-CAM needs gradients)."""
    return make_trainer(inference_mode=False, callbacks=[callback], logger=logger, **kwargs)


def _run(
    make_trainer: Callable[..., L.Trainer], logger
) -> tuple[L.Trainer, SegmentationEvaluation, FixedMaskSegmenter]:
    segmenter = FixedMaskSegmenter()
    callback = SegmentationEvaluation(
        BatchPipeline([segmenter], [CenterPoint(), GroundTruthCentroid()]), num_logged_images=3
    )
    trainer = _trainer(make_trainer, callback, logger)
    torch.manual_seed(0)
    trainer.test(ShapeClassifier(), dataloaders=_loader())
    return trainer, callback, segmenter


def test_metrics_match_hand_computed_values_in_json_and_tensorboard(
    tmp_path: Path, make_trainer: Callable[..., L.Trainer]
) -> None:
    with pytest.warns(UserWarning, match="1 of the 4 images scored have an empty ground-truth"):
        logger = TensorBoardLogger(tmp_path, name="run", default_hp_metric=False)
        trainer, _, segmenter = _run(make_trainer, logger)
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
        "eval_chart/fixed",
    }
    grid = events.Images("eval/fixed/CenterPoint")[-1]
    # three logged images, five panels each, every panel upscaled 4x, 2 px padding
    assert (grid.height, grid.width) == (3 * (4 * H + 2) + 2, 5 * (4 * W + 2) + 2)
    assert "eval/results/text_summary" in events.Tags()["tensors"]
    _check_chart(events.Images("eval_chart/fixed")[-1].encoded_image_string, expected)
    _check_hparams(log_dir, scalars)


def test_a_box_only_oracle_has_null_point_metrics_not_nan(
    tmp_path: Path, make_trainer: Callable[..., L.Trainer]
) -> None:
    """GroundTruthBox gives no point: its hit rate and distance are null in results.json (strict
    JSON, no NaN), a dash in the table, and absent from the logged scalars; its IoU is scored."""
    callback = SegmentationEvaluation(BatchPipeline([FixedMaskSegmenter()], [GroundTruthBox()]))
    trainer = _trainer(make_trainer, callback, CSVLogger(tmp_path))
    trainer.test(ShapeClassifier(), dataloaders=_loader())
    log_dir = Path(trainer.log_dir)

    def no_nan(constant: str) -> None:
        raise AssertionError(f"{constant} in results.json")

    results = json.loads((log_dir / "results.json").read_text(), parse_constant=no_nan)
    (row,) = results["rows"]
    assert row["hit_rate_fg"] is None and row["distance_fg"] is None
    assert row["iou"] == pytest.approx((1 / 3 + 1 / 3 + 0) / 3)
    assert "eval/fixed/GroundTruthBox/hit_rate_fg" not in results["metrics"]
    table = (log_dir / "results.md").read_text()
    assert "| fixed | GroundTruthBox (oracle: uses GT) | – |" in table


def _check_chart(png: bytes, expected: dict[str, float]) -> None:
    """Hit-rate bars as long as CenterPoint's hit rate and the oracle's (full), plus the legend."""
    chart = np.asarray(Image.open(io.BytesIO(png)).convert("RGB"))
    colour = dict(CHART_BARS)["hit_rate_fg"]
    runs = sorted({int(n) for n in (chart == colour).all(-1).sum(1) if n > 0})
    assert runs == [BAR_HEIGHT, round(expected["hit_rate_fg"] * BAR_LENGTH), BAR_LENGTH]


def _check_hparams(run: Path, scalars: dict[str, float]) -> None:
    """The HPARAMS tab's record, in the run's own folder: the model's and the method's settings,
    and the headline metrics, logged as scalars beside it."""
    events = EventAccumulator(str(run))
    events.Reload()
    content = events.PluginTagToContent("hparams")
    start = HParamsPluginData.FromString(content["_hparams_/session_start_info"])
    hparams = start.session_start_info.hparams
    assert hparams["model/arch"].string_value == "resnet18"
    assert hparams["method/segmenters"].string_value == "fixed"
    assert hparams["method/cam"].string_value == "gradcam++ layer2.1 flip_average=True"
    assert hparams["model/lr"].number_value == pytest.approx(ShapeClassifier().hparams.lr)
    experiment = HParamsPluginData.FromString(content["_hparams_/experiment"]).experiment
    names = [info.name.tag for info in experiment.metric_infos]
    assert names == ["test/acc", "eval/headline/no_click_iou", "eval/headline/oracle_iou"]
    assert scalars["eval/headline/no_click_iou"] == pytest.approx(
        scalars["eval/fixed/CenterPoint/iou"]
    )
    assert scalars["eval/headline/oracle_iou"] == pytest.approx(
        scalars["eval/fixed/GroundTruthCentroid/iou"]
    )


def test_consensus_reports_the_heatmap_point_next_to_its_refined_point(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, make_trainer: Callable[..., L.Trainer]
) -> None:
    """A CAM hot far from the shape, a segmenter that always cuts the shape: CamConsensus's
    refined point sits at the mask's centre (a hit), the heatmap's own point misses. The
    `_cam` columns show the miss; a strategy that never consults the segmenter shows it twice.
    """
    ys, xs = torch.meshgrid(torch.arange(H).float(), torch.arange(W).float(), indexing="ij")
    heat = torch.exp(-((xs - 10) ** 2 + (ys - 10) ** 2) / 18)

    def known_heatmaps(model, images, spec, targets=None):
        return heat.expand(len(images), H, W).clone(), torch.zeros(len(images), 5)

    monkeypatch.setattr("lit_gradcam.method.pipeline.compute_heatmaps", known_heatmaps)
    shape = _rect(20, 32)  # what FixedMaskSegmenter cuts: centre of mass (35.5, 23.5)
    loader = _loader([shape, shape])
    callback = SegmentationEvaluation(
        BatchPipeline([FixedMaskSegmenter()], [CamConsensus(), WeightedCentroid()])
    )
    trainer = _trainer(make_trainer, callback, CSVLogger(tmp_path, name="cam"))
    trainer.test(ShapeClassifier(), dataloaders=loader)

    results = json.loads((Path(trainer.log_dir) / "results.json").read_text())
    rows = {row["strategy"]: row for row in results["rows"]}
    miss = math.hypot(35.5 - 10, 23.5 - 10)
    assert rows["CamConsensus"]["hit_rate_fg"] == 1.0
    assert rows["CamConsensus"]["distance_fg"] == pytest.approx(0.0, abs=1e-6)
    assert rows["CamConsensus"]["hit_rate_fg_cam"] == 0.0
    assert rows["CamConsensus"]["distance_fg_cam"] == pytest.approx(miss, abs=1e-4)
    for name in ("hit_rate_fg", "hit_rate_fg_cam"):
        assert rows["WeightedCentroid"][name] == 0.0
    for name in ("distance_fg", "distance_fg_cam"):
        assert rows["WeightedCentroid"][name] == pytest.approx(miss, abs=1e-4)
    consults = {s["name"]: s["consults_segmenter"] for s in results["config"]["strategies"]}
    assert consults == {"CamConsensus": True, "WeightedCentroid": False}
    row = "| fixed | CamConsensus | 1.000 | 1.000 | 1.000 | 0.000 | – | – | 0.000 |"
    assert f"{row} {miss:.3f} |" in (Path(trainer.log_dir) / "results.md").read_text()


def test_other_loggers_get_files_but_no_grids(
    tmp_path: Path, make_trainer: Callable[..., L.Trainer]
) -> None:
    trainer, _, _ = _run(make_trainer, CSVLogger(tmp_path, name="csv"))
    results = json.loads((Path(trainer.log_dir) / "results.json").read_text())
    assert results["metrics"]["eval/fixed/CenterPoint/hit_rate_fg"] == pytest.approx(2 / 3)


def test_validate_and_periodic_validation_evaluate_the_val_loader(
    tmp_path: Path, make_trainer: Callable[..., L.Trainer]
) -> None:
    """`main.py validate` (the sweep) and `every_n_validations` score the validation split:
    three images whose IoUs with the fixed mask are 1, 1 and 1/3, never the four training
    images. Validating twice per epoch, by step, every second validation is evaluated, each
    into its own file."""
    callback = SegmentationEvaluation(
        BatchPipeline([FixedMaskSegmenter()], [CenterPoint()]), every_n_validations=2
    )
    trainer = _trainer(
        make_trainer,
        callback,
        CSVLogger(tmp_path, name="val"),
        max_steps=8,
        val_check_interval=2,
        check_val_every_n_epoch=None,
        limit_val_batches=1.0,
    )
    val = [_rect(20, 32), _rect(20, 32), _rect(20, 28)]
    val_iou = (1 + 1 + 1 / 3) / 3
    model = ShapeClassifier(one_cycle=False)
    trainer.fit(model, train_dataloaders=_loader(), val_dataloaders=_loader(val))
    log_dir = Path(trainer.log_dir)
    # validations at steps 2, 4, 6, 8: the second and the fourth are evaluated
    written = sorted(p.name for p in log_dir.glob("results_val*.json"))
    assert written == ["results_val_step4.json", "results_val_step8.json"]
    periodic = json.loads((log_dir / "results_val_step8.json").read_text())
    assert periodic["num_images"] == 3
    assert periodic["metrics"]["val_eval/fixed/CenterPoint/iou"] == pytest.approx(val_iou)
    trainer.validate(model, dataloaders=_loader(val))
    results = json.loads((Path(trainer.log_dir) / "results_val.json").read_text())
    assert results["num_images"] == 3
    assert results["metrics"]["val_eval/fixed/CenterPoint/iou"] == pytest.approx(val_iou)
