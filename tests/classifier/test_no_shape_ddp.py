"""The no-shape flag under DDP on two CPU processes: the presence phase runs on rank 0 and is
broadcast, the threshold is taken over every rank's validation scores, so a two-process fit
saves the flag of a one-process fit (the classifiers themselves differ: their batches do)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[2]


def _fit(tmp_path: Path, devices: int) -> dict:
    folder = tmp_path / f"ckpt{devices}"
    args = [
        sys.executable, "main.py", "fit",
        "--data.root", str(tmp_path / "shapes"),
        "--data.train_size", "24", "--data.val_size", "7", "--data.test_size", "0",
        "--data.batch_size", "8", "--data.eval_batch_size", "2",  # 7 val images: uneven
        "--model.weights", "null",
        "--checkpoint.dirpath", str(folder),
        "--trainer.default_root_dir", str(tmp_path / f"root{devices}"),
        "--trainer.accelerator", "cpu", "--trainer.enable_progress_bar", "false",
        "--trainer.precision", "32-true",
        "--trainer.max_steps", "3", "--trainer.val_check_interval", "3",
        "--trainer.devices", str(devices),
        "--trainer.strategy", "ddp" if devices > 1 else "auto",
        "--no_shape.steps", "4",
    ]  # fmt: skip
    # one thread per process in both runs, as Lightning gives each of two DDP processes on two
    # cores: the same reduction order, so the same floats
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    done = subprocess.run(args, cwd=ROOT, env=env, capture_output=True, text=True, timeout=400)
    assert done.returncode == 0, done.stderr[-3000:]
    return torch.load(folder / "last.ckpt", weights_only=True)["callbacks"]["NoShapeFlag"]


@pytest.mark.slow
def test_two_process_ddp_saves_the_flag_of_one_process(tmp_path: Path) -> None:
    single, double = _fit(tmp_path, 1), _fit(tmp_path, 2)
    torch.testing.assert_close(double["net"], single["net"])
    assert double["threshold"] == pytest.approx(single["threshold"], abs=1e-6)
    assert single["threshold"] > float("-inf")
