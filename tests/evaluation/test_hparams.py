"""What TensorBoard shows of evaluation runs, read back from their event files with TensorBoard's
own HPARAMS backend: a fit and two tests of its checkpoint (saved at step 3) are two rows, one per
test run, with the run's settings and its headline metrics at step 3, and every record of a test
sits at step 3; a validate run is a row with the validation's headline."""

import json
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import lightning as L
import pytest
import torch
from lightning.pytorch.loggers import TensorBoardLogger
from tensorboard import context
from tensorboard.backend.event_processing import data_provider, plugin_event_multiplexer
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from tensorboard.backend.event_processing.event_file_loader import EventFileLoader
from tensorboard.plugins import base_plugin
from tensorboard.plugins.hparams import (
    api_pb2,
    backend_context,
    get_experiment,
    list_session_groups,
)
from torch.utils.data import DataLoader, TensorDataset

from lit_gradcam.classifier import ShapeClassifier
from lit_gradcam.evaluation.callback import SegmentationEvaluation
from lit_gradcam.method.pipeline import BatchPipeline
from lit_gradcam.prompt_types import Prompts
from lit_gradcam.prompts.strategies import CenterPoint, GroundTruthCentroid, WeightedCentroid
from lit_gradcam.segmenters.base import Segmenter

H, W = 48, 64
STEP = 3  # the fit's optimizer steps, the checkpoint's global step
HEADLINE = [
    "test/acc",
    "eval/headline/no_click_iou",
    "eval/headline/oracle_iou",
    "eval/headline/worth_clicks",
]


class PointSquare(Segmenter):
    """Cuts an 8x8 square centred on each image's first prompt point, so strategies differ."""

    name = "square"

    def embed(self, images: torch.Tensor) -> int:
        return images.shape[0]

    def select(self, state: int, index: torch.Tensor) -> int:
        return len(index)

    def predict(
        self, state: int, prompts: Prompts, heatmaps: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        masks = torch.zeros(state, H, W, dtype=torch.bool)
        for mask, (x, y) in zip(masks, prompts.points[:, 0].round().long().tolist(), strict=True):
            mask[max(y - 4, 0) : y + 4, max(x - 4, 0) : x + 4] = True
        return masks, torch.ones(state)


def _loader() -> DataLoader:
    """Four random images with 8x8 squares as ground truth, two per batch."""
    gt = torch.zeros(4, H, W, dtype=torch.bool)
    for mask, (top, left) in zip(gt, [(20, 28), (4, 4), (30, 50), (10, 40)], strict=True):
        mask[top : top + 8, left : left + 8] = True
    images = torch.randn(4, 3, H, W, generator=torch.Generator().manual_seed(0))
    return DataLoader(TensorDataset(images, torch.arange(4) % 5, gt), batch_size=2)


def _evaluation(every_n_validations: int = 0) -> SegmentationEvaluation:
    strategies = [CenterPoint(), WeightedCentroid(), GroundTruthCentroid()]
    pipeline = BatchPipeline([PointSquare()], strategies)
    return SegmentationEvaluation(pipeline, every_n_validations=every_n_validations)


def _logger(root: Path) -> TensorBoardLogger:
    """As configs/base.yaml sets it up: no `hp_metric` placeholder."""
    return TensorBoardLogger(root, name="runs", default_hp_metric=False)


def _hparams_view(root: Path) -> tuple[api_pb2.Experiment, list[api_pb2.SessionGroup]]:
    """The HPARAMS tab of `tensorboard --logdir root`: its columns and its rows."""
    events = plugin_event_multiplexer.EventMultiplexer()
    events.AddRunsFromDirectory(str(root))
    events.Reload()
    provider = data_provider.MultiplexerDataProvider(events, str(root))
    tb = base_plugin.TBContext(logdir=str(root), multiplexer=events, data_provider=provider)
    backend, request = backend_context.Context(tb), context.RequestContext()
    query = api_pb2.GetExperimentRequest(hparams_limit=1000)  # as the frontend asks
    experiment = get_experiment.Handler(request, backend, "", query).run()
    rows = api_pb2.ListSessionGroupsRequest(
        allowed_statuses=[api_pb2.STATUS_UNKNOWN, api_pb2.STATUS_SUCCESS], slice_size=100
    )
    groups = list_session_groups.Handler(request, backend, "", rows).run().session_groups
    return experiment, list(groups)


def _hparams_records(run: Path) -> Counter[str]:
    """How many HPARAMS records of each kind the event files directly in `run` hold."""
    return Counter(
        value.tag
        for file in run.glob("events.out.tfevents.*")
        for event in EventFileLoader(str(file)).Load()
        for value in event.summary.value
        if value.metadata.plugin_data.plugin_name == "hparams"
    )


@pytest.fixture
def checkpoint(tmp_path: Path, make_trainer: Callable[..., L.Trainer]) -> Path:
    """A fit of `STEP` steps into tmp_path/logs/runs/version_0, evaluated at every validation,
    saved to tmp_path/fit.ckpt."""
    trainer = make_trainer(
        max_steps=STEP,
        inference_mode=False,
        logger=_logger(tmp_path / "logs"),
        callbacks=[_evaluation(every_n_validations=1)],
        limit_val_batches=1.0,
    )
    trainer.fit(ShapeClassifier(one_cycle=False), _loader(), _loader())
    assert trainer.global_step == STEP
    trainer.save_checkpoint(tmp_path / "fit.ckpt")
    return tmp_path / "fit.ckpt"


def test_two_tests_of_a_checkpoint_are_two_rows_of_headline_metrics_at_its_step(
    tmp_path: Path, make_trainer: Callable[..., L.Trainer], checkpoint: Path
) -> None:
    logs = tmp_path / "logs"
    for _ in range(2):
        trainer = make_trainer(
            inference_mode=False, logger=_logger(logs), callbacks=[_evaluation()]
        )
        trainer.test(ShapeClassifier(), _loader(), ckpt_path=str(checkpoint))
        assert trainer.global_step == 0  # Lightning restores no step outside fit

    fit, *tests = sorted((logs / "runs").iterdir())
    assert [run.name for run in tests] == ["version_1", "version_2"]
    assert "val_eval/headline/no_click_iou" in EventAccumulator(str(fit)).Reload().Tags()["scalars"]
    assert _hparams_records(fit) == Counter()  # evaluated while fitting, but no row
    one = {"_hparams_/experiment": 1, "_hparams_/session_start_info": 1}
    for run in tests:
        assert _hparams_records(run) == Counter({**one, "_hparams_/session_end_info": 1})
    folders = {file.parent for file in logs.rglob("events.out.tfevents.*")}
    assert folders == {fit, *tests}  # no run of its own for the HPARAMS record

    experiment, rows = _hparams_view(logs)
    names = [info.name for info in experiment.hparam_infos]
    assert not [name for name in names if name.startswith("_") or "/_" in name]
    # the five columns TensorBoard shows before any is ticked
    assert names[:5] == ["checkpoint", "data", "method/cam", "method/segmenters", "model/arch"]
    assert [info.name.tag for info in experiment.metric_infos] == HEADLINE
    assert [row.name for row in rows] == ["runs/version_1", "runs/version_2"]
    for row, run in zip(rows, tests, strict=True):
        headline = json.loads((run / "results.json").read_text())["headline"]
        assert len(row.sessions) == 1
        assert row.hparams["checkpoint"].string_value == str(checkpoint)
        assert row.hparams["method/cam"].string_value.startswith("gradcam++ layer2.1")
        assert row.hparams["method/segmenters"].string_value == "square"
        values = {metric.name.tag: metric for metric in row.metric_values}
        assert set(values) == set(HEADLINE)
        assert {metric.training_step for metric in values.values()} == {STEP}
        expected = [headline[k] for k in ("accuracy", "no_click_iou", "oracle_iou", "worth_clicks")]
        assert [values[tag].value for tag in HEADLINE] == pytest.approx(expected)

        events = EventAccumulator(str(run), size_guidance={"images": 0, "tensors": 0}).Reload()
        tags = events.Tags()
        assert len(tags["scalars"]) > len(HEADLINE)
        assert {events.Scalars(tag)[-1].step for tag in tags["scalars"]} == {STEP}
        assert {events.Images(tag)[-1].step for tag in tags["images"]} == {STEP}
        assert events.Tensors("eval/results/text_summary")[-1].step == STEP


def test_the_headline_is_the_best_no_click_row_and_the_best_oracle(
    tmp_path: Path, make_trainer: Callable[..., L.Trainer], checkpoint: Path
) -> None:
    """results.json's headline: the no-click row of highest IoU (with its worth in clicks) and
    the oracle's; a validate run is a row of the validation's headline at the step too."""
    logs = tmp_path / "val_logs"
    trainer = make_trainer(
        inference_mode=False,
        logger=_logger(logs),
        callbacks=[_evaluation()],
        limit_val_batches=1.0,
    )
    trainer.validate(ShapeClassifier(), _loader(), ckpt_path=str(checkpoint))
    results = json.loads((Path(trainer.log_dir) / "results_val.json").read_text())
    rows = {row["strategy"]: row for row in results["rows"]}
    best = max(["CenterPoint", "WeightedCentroid"], key=lambda name: rows[name]["iou"])
    assert results["headline"] == {
        "accuracy": results["val/acc"],
        "no_click": f"square / {best}",
        "no_click_iou": rows[best]["iou"],
        "oracle": "square / GroundTruthCentroid",
        "oracle_iou": rows["GroundTruthCentroid"]["iou"],
        "worth_clicks": rows[best]["worth_clicks"],
    }
    assert rows[best]["worth_clicks"] is not None

    experiment, (row,) = _hparams_view(logs)
    val_headline = [tag.replace("eval/", "val_eval/") for tag in HEADLINE[1:]]
    assert [info.name.tag for info in experiment.metric_infos] == ["val/acc", *val_headline]
    assert {metric.training_step for metric in row.metric_values} == {STEP}
    assert len(row.metric_values) == len(HEADLINE)
