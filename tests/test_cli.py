"""The command line end to end on a tiny generated dataset (fit, then test from `last`), every
shipped config parsed for every subcommand, and the errors a user reads instead of a traceback."""

import csv
import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from tensorboard.backend.event_processing.event_file_loader import EventFileLoader
from tensorboard.plugins.hparams.plugin_data_pb2 import HParamsPluginData

from lit_gradcam.classifier import ShapeClassifier
from lit_gradcam.cli import cli_main, main
from lit_gradcam.data.dataset import ShapesFolder
from lit_gradcam.data.generate import generate_dataset
from lit_gradcam.method.pipeline import default_strategies

ROOT = Path(__file__).resolve().parents[1]
CONFIGS = sorted((ROOT / "configs").glob("*.yaml"))


def _common(tmp_path: Path) -> list[str]:
    return [
        "--data.root", str(tmp_path / "shapes"),
        "--data.train_size", "20",
        "--data.val_size", "10",
        "--data.test_size", "10",
        "--data.batch_size", "10",
        "--data.eval_batch_size", "10",
        "--checkpoint.dirpath", str(tmp_path / "ckpt"),
        "--trainer.default_root_dir", str(tmp_path / "logs"),
        "--trainer.enable_progress_bar", "false",
        "--trainer.precision", "32-true",  # the by-hand checks compute in float32
    ]  # fmt: skip


def test_fit_then_test_from_last_checkpoint(tmp_path: Path) -> None:
    fit = cli_main(["fit", *_common(tmp_path), "--trainer.max_epochs", "2"])
    last = tmp_path / "ckpt" / "last.ckpt"
    assert last.is_file()
    assert fit.trainer.current_epoch == 2
    trained = torch.load(last, weights_only=True)["state_dict"]["model.fc.weight"]

    test = cli_main(["test", *_common(tmp_path), "--ckpt_path", "last"])
    assert test.trainer.ckpt_path == str(last)
    assert torch.equal(test.model.model.fc.weight.detach(), trained)
    accuracy = test.trainer.callback_metrics["test/acc"].item()
    assert accuracy == pytest.approx(_accuracy_by_hand(last, tmp_path / "shapes"), abs=1e-6)
    # each run saved its config next to its logs, without "config.yaml exists" failures
    assert len(list((tmp_path / "logs").rglob("config.yaml"))) == 2
    # with no config, test runs the default evaluation: every strategy with GrabCut
    (results_file,) = (tmp_path / "logs").rglob("results.json")
    results = json.loads(results_file.read_text())
    assert results["num_images"] == 10
    assert {row["segmenter"] for row in results["rows"]} == {"grabcut"}
    assert len(results["rows"]) == len(default_strategies())
    assert results["test/acc"] == pytest.approx(accuracy)
    # TensorBoard: the test run is the one HPARAMS row (configs/base.yaml turns Lightning's
    # `hp_metric` placeholder off), and its scalars sit at the step the checkpoint was saved at
    test_run = results_file.parent
    runs = {file.parent for file in (tmp_path / "logs").rglob("events.out.tfevents.*")}
    assert len(runs) == 2 and test_run in runs
    sessions = {run: _hparams_sessions(run) for run in runs}
    (names,) = sessions.pop(test_run)
    assert list(sessions.values()) == [[]]  # the fit's run
    assert "checkpoint" in names and not [name for name in names if "_instantiator" in name]
    events = EventAccumulator(str(test_run))
    events.Reload()
    assert "hp_metric" not in events.Tags()["scalars"]
    steps = {events.Scalars(tag)[-1].step for tag in events.Tags()["scalars"]}
    assert steps == {fit.trainer.global_step}


def _hparams_sessions(run: Path) -> list[list[str]]:
    """The setting names of each HPARAMS session recorded directly in `run`."""
    starts = [
        value.metadata.plugin_data.content
        for file in run.glob("events.out.tfevents.*")
        for event in EventFileLoader(str(file)).Load()
        for value in event.summary.value
        if value.tag == "_hparams_/session_start_info"
    ]
    return [list(HParamsPluginData.FromString(c).session_start_info.hparams) for c in starts]


def _accuracy_by_hand(checkpoint: Path, root: Path) -> float:
    """Top-1 accuracy of the checkpoint's classifier on the test split, outside Lightning."""
    model = ShapeClassifier.load_from_checkpoint(checkpoint, map_location="cpu").eval()
    split = ShapesFolder(root, "test")
    images = torch.stack([split[i][0] for i in range(len(split))])
    labels = torch.stack([split[i][1] for i in range(len(split))])
    with torch.no_grad():
        predicted = model(images).argmax(-1)
    return (predicted == labels).double().mean().item()


def _sam_tiny(tmp_path: Path, batch_size: int, *more: str) -> list[str]:
    """configs/sam_tiny.yaml on a few small scenes, writing under `tmp_path`."""
    return [
        "--config", str(ROOT / "configs" / "sam_tiny.yaml"),
        "--data.init_args.batch_size", str(batch_size),
        "--data.init_args.val_size", "4",
        "--data.init_args.eval_batch_size", "4",
        "--checkpoint.dirpath", str(tmp_path / "ckpt"),
        "--trainer.default_root_dir", str(tmp_path / "logs"),
        "--trainer.enable_progress_bar", "false",
        "--trainer.logger", "false",
        *more,
    ]  # fmt: skip


def test_sam_tiny_fit_then_test_from_its_checkpoint_file(tmp_path: Path) -> None:
    """A SamTuner fitted on scenes by the CLI is tested on a shapes folder from its checkpoint
    named as a file (LightningCLI then reads the model's hyper-parameters from it) as well as
    from `last`: same weights, same score."""
    shapes = generate_dataset(tmp_path / "shapes", {"test": 6}, progress=False)
    common = _sam_tiny(tmp_path, 4, "--data.init_args.test_root", str(shapes))
    cli_main(["fit", *common, "--trainer.max_steps", "2", "--trainer.val_check_interval", "2"])
    last = tmp_path / "ckpt" / "last.ckpt"
    trained = torch.load(last, weights_only=True)["state_dict"]
    scores = []
    for ckpt_path in (str(last), "last"):
        test = cli_main(["test", *common, "--ckpt_path", ckpt_path])
        weights = test.model.state_dict()
        assert all(torch.equal(weights[name], value) for name, value in trained.items())
        assert len(test.trainer.test_dataloaders.dataset) == 6  # the folder's test split
        scores.append(test.trainer.callback_metrics["test/iou_point"].item())
    assert scores[0] == scores[1]


def test_sam_tiny_fits_and_validates_in_bf16_mixed_precision(tmp_path: Path) -> None:
    """The stand-in's config runs under `--trainer.precision bf16-mixed` (what a GPU uses):
    training steps and validation through SamSegmenter, whose masks come back in float32."""
    steps = ["--trainer.max_steps", "2", "--trainer.val_check_interval", "2"]
    fit = cli_main(["fit", *_sam_tiny(tmp_path, 8, "--trainer.precision", "bf16-mixed", *steps)])
    assert fit.trainer.global_step == 2
    assert 0 <= fit.trainer.callback_metrics["val/iou_point"].item() <= 1


@pytest.mark.parametrize(
    "precision",
    [
        "bf16-mixed",
        pytest.param(
            "16-mixed",
            marks=pytest.mark.skipif(not torch.cuda.is_available(), reason="float16 AMP is CUDA's"),
        ),
    ],
)
def test_classifier_fits_tests_and_predicts_in_mixed_precision(
    tmp_path: Path, precision: str
) -> None:
    """Mixed precision end to end: the network trains in channels-last layout, and `test` and
    `predict` give what they give in float32 (Grad-CAM, the segmenters and the written
    probabilities run outside autocast)."""
    bf16 = [*_common(tmp_path), "--trainer.precision", precision]
    fit = cli_main(["fit", *bf16, "--trainer.max_steps", "4"])
    assert fit.model.model.conv1.weight.is_contiguous(memory_format=torch.channels_last)
    results = {}
    for name, args in (("bf16", bf16), ("fp32", _common(tmp_path))):
        logs = tmp_path / f"logs_{name}"
        cli_main(["test", *args, "--ckpt_path", "last", "--trainer.default_root_dir", str(logs)])
        (results_file,) = logs.rglob("results.json")
        results[name] = json.loads(results_file.read_text())
    for bf16_row, fp32_row in zip(results["bf16"]["rows"], results["fp32"]["rows"], strict=True):
        assert bf16_row["strategy"] == fp32_row["strategy"]
        assert bf16_row["hit_rate_fg"] == pytest.approx(fp32_row["hit_rate_fg"], abs=0.11)
        assert bf16_row["iou"] == pytest.approx(fp32_row["iou"], abs=0.05)
    images = tmp_path / "shapes" / "images" / "test"
    predictions = {}
    for name, args in (("bf16", bf16), ("fp32", _common(tmp_path))):
        out = tmp_path / f"predictions_{name}"
        cli_main(
            ["predict", *args, "--ckpt_path", "last", "--data.predict_dir", str(images),
             "--output.output_dir", str(out)]
        )  # fmt: skip
        assert len(list(out.glob("*_mask.png"))) == 10
        predictions[name] = list(csv.DictReader((out / "predictions.csv").open()))
    for bf16_row, fp32_row in zip(predictions["bf16"], predictions["fp32"], strict=True):
        assert bf16_row["predicted_class"] == fp32_row["predicted_class"]
        assert float(bf16_row["probability"]) == pytest.approx(
            float(fp32_row["probability"]), abs=2e-3
        )


def test_test_without_checkpoint_is_refused(tmp_path: Path, capsys) -> None:
    with pytest.raises(SystemExit) as exit_info:
        cli_main(["test", *_common(tmp_path)])
    assert exit_info.value.code != 0
    assert "--ckpt_path last" in capsys.readouterr().err


def test_test_from_missing_last_checkpoint_is_refused(tmp_path: Path, capsys) -> None:
    with pytest.raises(SystemExit):
        cli_main(["test", *_common(tmp_path), "--ckpt_path", "last"])
    err = capsys.readouterr().err
    assert "no last checkpoint" in err and str(tmp_path / "ckpt") in err


@pytest.mark.parametrize("subcommand", ["fit", "validate", "test", "predict"])
@pytest.mark.parametrize("config", CONFIGS, ids=lambda path: path.name)
def test_shipped_config_parses(config: Path, subcommand: str, capsys) -> None:
    """`--print_config` parses the file for the subcommand and prints every section it sets."""
    with pytest.raises(SystemExit) as exit_info:
        cli_main([subcommand, "--config", str(config), "--print_config"])
    assert exit_info.value.code in (None, 0)
    printed = yaml.safe_load(capsys.readouterr().out)
    written = yaml.safe_load(config.read_text())
    assert set(written) - {"ckpt_path"} <= set(printed)


def test_a_bad_data_folder_prints_one_message_and_exits_nonzero(tmp_path: Path) -> None:
    """`python main.py fit` on a folder with a truncated image and an unknown class: each named
    in one message, no traceback, exit status 1."""
    root = tmp_path / "homework"
    for split in ("train", "val"):
        for kind in ("images", "masks", "labels"):
            (root / kind / split).mkdir(parents=True)
        (root / "images" / split / "a.png").write_bytes(b"\x89PNG\r\n\x1a\n cut short")
        (root / "masks" / split / "a.png").write_bytes(b"\x89PNG\r\n\x1a\n cut short")
        (root / "labels" / split / "a.txt").write_text("hexagon")
    command = [
        sys.executable, "main.py", "fit", *_common(tmp_path),
        "--data.root", str(root), "--data.generate", "false",
    ]  # fmt: skip
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 1
    assert "Traceback" not in done.stderr
    assert str(root / "images" / "train" / "a.png") in done.stderr
    assert str(root / "labels" / "train" / "a.txt") in done.stderr


def test_without_a_logger_the_config_goes_beside_the_checkpoints(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`--trainer.logger false` with no root folder: Lightning would write config.yaml into the
    current folder, over a file of the user's; it goes into the checkpoint folder instead."""
    monkeypatch.chdir(tmp_path)
    mine = tmp_path / "config.yaml"
    mine.write_text("my own notes\n")
    args = [arg for arg in _common(tmp_path) if arg != "--trainer.default_root_dir"]
    args.remove(str(tmp_path / "logs"))
    cli_main(["fit", *args, "--trainer.max_steps", "1", "--trainer.logger", "false"])
    assert mine.read_text() == "my own notes\n"
    saved = yaml.safe_load((tmp_path / "ckpt" / "config.yaml").read_text())
    assert saved["trainer"]["logger"] is False and saved["trainer"]["max_steps"] == 1


def test_a_data_root_generated_with_other_sizes_is_one_message(tmp_path: Path) -> None:
    """A folder generated with other split sizes (the README's `generate --train 3500` followed
    by a bare `fit`): one message saying how to read it as it is, nothing touched."""
    other = generate_dataset(tmp_path / "other", {"train": 5, "val": 5, "test": 5}, progress=False)
    marker = (other / "dataset.json").read_text()
    with pytest.raises(SystemExit) as exit_info:
        main(["fit", *_common(tmp_path), "--data.root", str(other)])
    message = str(exit_info.value.code)
    assert message.startswith("error: ") and "--data.generate false" in message
    assert (other / "dataset.json").read_text() == marker


def test_last_checkpoint_holds_the_final_step_when_the_last_validation_did_not_improve(
    tmp_path: Path,
) -> None:
    """A learning rate too small to change val/acc: only the first validation saves a top-k
    checkpoint, and last.ckpt still ends at the run's final step."""
    args = [*_common(tmp_path), "--model.lr", "1e-12", "--no_shape.steps", "0"]
    cli_main(["fit", *args, "--trainer.max_steps", "4", "--trainer.val_check_interval", "2"])
    (best,) = (tmp_path / "ckpt").glob("epoch=*.ckpt")
    assert torch.load(best, weights_only=False)["global_step"] == 2
    assert torch.load(tmp_path / "ckpt" / "last.ckpt", weights_only=False)["global_step"] == 4
