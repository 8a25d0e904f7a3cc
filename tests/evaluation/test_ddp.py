"""Two CPU processes under DDP give exactly the results.json numbers of one process, on a test
split that does not divide evenly: no image is counted twice (the sampler pads nothing)."""

import json
import subprocess
import sys
from pathlib import Path

import pytest
from helpers.datasets import write_class_map_folder

from lit_gradcam.cli import cli_main

ROOT = Path(__file__).resolve().parents[2]

CONFIG = """
trainer:
  accelerator: cpu
  enable_progress_bar: false
method:
  segmenters:
    - class_path: lit_gradcam.segmenters.grabcut.GrabCutSegmenter
  strategies:
    - class_path: lit_gradcam.prompts.strategies.TopKForeground
    - class_path: lit_gradcam.prompts.strategies.ForegroundBackground
    - class_path: lit_gradcam.prompts.strategies.CamConsensus
    - class_path: lit_gradcam.prompts.strategies.GroundTruthCentroid
data:
  train_size: 20
  val_size: 10
  test_size: 7
  batch_size: 10
  # one image per batch: each image meets the same arithmetic in both runs, and the two
  # processes run 4 and 3 batches
  eval_batch_size: 1
"""


def _test_run(tmp_path: Path, devices: int) -> dict:
    logs = tmp_path / f"logs{devices}"
    args = [
        sys.executable, "main.py", "test",
        "--config", str(tmp_path / "config.yaml"),
        "--data.root", str(tmp_path / "shapes"),
        "--checkpoint.dirpath", str(tmp_path / "ckpt"),
        "--trainer.default_root_dir", str(logs),
        "--trainer.devices", str(devices),
        "--trainer.strategy", "ddp" if devices > 1 else "auto",
        "--ckpt_path", "last",
    ]  # fmt: skip
    done = subprocess.run(args, cwd=ROOT, capture_output=True, text=True, timeout=400)
    assert done.returncode == 0, done.stderr[-3000:]
    (results,) = logs.rglob("results.json")
    return json.loads(results.read_text())


@pytest.mark.slow
def test_two_process_ddp_matches_one_process(tmp_path: Path) -> None:
    (tmp_path / "config.yaml").write_text(CONFIG)
    common = [
        "--config", str(tmp_path / "config.yaml"),
        "--data.root", str(tmp_path / "shapes"),
        "--checkpoint.dirpath", str(tmp_path / "ckpt"),
        "--trainer.default_root_dir", str(tmp_path / "fit"),
    ]  # fmt: skip
    cli_main(["fit", *common, "--trainer.max_epochs", "1"])

    single = _test_run(tmp_path, devices=1)
    double = _test_run(tmp_path, devices=2)
    assert single["num_images"] == double["num_images"] == 7
    assert single["metrics"].keys() == double["metrics"].keys()
    for key, value in single["metrics"].items():
        assert double["metrics"][key] == pytest.approx(value, rel=1e-12, nan_ok=True), key
    assert double["class_accuracy"] == single["class_accuracy"]
    assert double["test/acc"] == single["test/acc"]


CLASS_MAP_CONFIG = """
trainer:
  accelerator: cpu
  enable_progress_bar: false
model:
  stages: 2
method:
  segmenters:
    - class_path: lit_gradcam.segmenters.grabcut.GrabCutSegmenter
data:
  generate: false
  batch_size: 16
  eval_batch_size: 1
"""


@pytest.mark.slow
def test_class_maps_of_a_multi_label_folder_under_ddp_match_one_process(tmp_path: Path) -> None:
    """Own classes, several objects: class-map IoUs, object prompts and per-class F1 of two
    processes are one process's, on a test split of 7 images."""
    write_class_map_folder(tmp_path / "shapes", {"train": 32, "val": 8, "test": 7})
    (tmp_path / "config.yaml").write_text(CLASS_MAP_CONFIG)
    common = [
        "--config", str(tmp_path / "config.yaml"),
        "--data.root", str(tmp_path / "shapes"),
        "--checkpoint.dirpath", str(tmp_path / "ckpt"),
        "--trainer.default_root_dir", str(tmp_path / "fit"),
    ]  # fmt: skip
    cli_main(["fit", *common, "--trainer.max_steps", "6", "--trainer.val_check_interval", "2"])
    single = _test_run(tmp_path, devices=1)
    double = _test_run(tmp_path, devices=2)
    assert single["num_images"] == double["num_images"] == 7
    assert single["metrics"].keys() == double["metrics"].keys()
    assert any("/miou" in key for key in single["metrics"])
    for key, value in single["metrics"].items():
        assert double["metrics"][key] == pytest.approx(value, rel=1e-12, nan_ok=True), key
    assert double["class_f1"] == single["class_f1"]
    assert double["num_objects"] == single["num_objects"] > 7
