"""SamTuner under DDP on two CPU processes: the fit runs (every trainable parameter gets a
gradient) and validating its checkpoint gives the IoU of one process, every image once."""

from __future__ import annotations

import csv
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _main(tmp_path: Path, subcommand: str, devices: int, *extra: str) -> None:
    args = [
        sys.executable, "main.py", subcommand,
        "--config", str(ROOT / "configs" / "sam_tiny.yaml"),
        "--data.init_args.val_size", "7",  # uneven across 2 processes
        "--data.init_args.batch_size", "4", "--data.init_args.eval_batch_size", "2",
        "--checkpoint.dirpath", str(tmp_path / "ckpt"),
        "--trainer.default_root_dir", str(tmp_path / "root"),  # config.yaml goes there
        "--trainer.accelerator", "cpu", "--trainer.enable_progress_bar", "false",
        "--trainer.limit_val_batches", "1.0",
        "--trainer.devices", str(devices),
        "--trainer.strategy", "ddp" if devices > 1 else "auto",
        *extra,
    ]  # fmt: skip
    done = subprocess.run(args, cwd=ROOT, capture_output=True, text=True, timeout=400)
    assert done.returncode == 0, done.stderr[-3000:]


def _validate(tmp_path: Path, devices: int) -> dict[str, float]:
    logs = tmp_path / f"logs{devices}"
    _main(
        tmp_path, "validate", devices, "--ckpt_path", "last",
        "--trainer.logger", "lightning.pytorch.loggers.CSVLogger",
        "--trainer.logger.save_dir", str(logs),
    )  # fmt: skip
    (metrics,) = logs.rglob("metrics.csv")
    (row,) = csv.DictReader(metrics.open())
    return {key: float(value) for key, value in row.items() if key.startswith("val/")}


@pytest.mark.slow
def test_two_process_ddp_fits_and_validates_like_one_process(tmp_path: Path) -> None:
    _main(
        tmp_path, "fit", 2, "--trainer.max_steps", "2", "--trainer.val_check_interval", "2",
        "--trainer.logger", "false",
    )  # fmt: skip
    assert (tmp_path / "ckpt" / "last.ckpt").is_file()
    single, double = _validate(tmp_path, 1), _validate(tmp_path, 2)
    assert set(single) == set(double) == {"val/iou_point", "val/iou_box"}
    for key, value in single.items():
        assert double[key] == pytest.approx(value, rel=1e-6), key
