"""Stopping a run through the real command line, one row per case: a subprocess paused at a step
or batch (`helpers.pausing`) gets a real signal there, and must exit within `DEADLINE_S` with
the signal's status and one `stopped by ...` line, leaving what the row's check asks (a
checkpoint at the step reached that resumes to the uninterrupted run's schedule; no results,
no predictions and no staging folder; no half-written weights). The next case is one more row of
`CASES`."""

from __future__ import annotations

import os
import shlex
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import torch
from helpers.pausing import TINY_RECIPE

from lit_gradcam.classifier import shapes_weights
from lit_gradcam.cli import cli_main
from lit_gradcam.prediction.files import CSV_NAME, STAGING_NAME

ROOT = Path(__file__).resolve().parents[1]
#: What the issue allows a stopped run, a grace period's lower end (10-30 s).
DEADLINE_S = 30
#: The training steps of every fit here (validated every 3), and the step its stop comes at.
MAX_STEPS, STOP_STEP = 4, 2


@dataclass(frozen=True)
class Run:
    """A case's stopped run: its words (without the pause), its folder, what it printed."""

    words: list[str]
    tmp: Path
    stderr: str


Check = Callable[[Run], None]


@dataclass(frozen=True)
class Case:
    """One stop: the command (`{ckpt}`, `{images}`, `{out}` filled in), the signal, the expected
    status and a piece of the line, where the run pauses (`""`: the CLI's own Trainer, else a
    nested one, see `helpers.pausing`), and what to check afterwards."""

    id: str
    command: str
    signal: signal.Signals
    status: int
    line: str
    check: Check
    phase: str = ""


def _words(tmp: Path, root: Path) -> list[str]:
    return [
        "--data.root", str(root), "--data.generate", "false",
        "--data.batch_size", "4", "--data.eval_batch_size", "5",
        "--checkpoint.dirpath", str(tmp / "ckpt"),
        "--trainer.default_root_dir", str(tmp / "logs"),
        "--trainer.logger", "false",
        "--trainer.enable_progress_bar", "false",
        "--trainer.enable_model_summary", "false",
        "--trainer.precision", "32-true",
        "--trainer.max_steps", str(MAX_STEPS),
        "--trainer.val_check_interval", "3",
        "--model.weights", "null",
        "--model.stages", "2",
        "--no_shape.steps", "0",
    ]  # fmt: skip


def _saved_step(run: Run) -> int:
    return torch.load(run.tmp / "ckpt" / "last.ckpt", weights_only=False)["global_step"]


def _resumes_to_the_uninterrupted_schedule(run: Run) -> None:
    """last.ckpt holds the step reached; the printed command resumes it to `MAX_STEPS`, with the
    step count and LR schedule (the scheduler's whole state) of a run that was never stopped."""
    assert abs(_saved_step(run) - STOP_STEP) <= 2
    resume = run.stderr.split("resume: ", 1)[1].splitlines()[0]
    assert shlex.split(resume)[:2] == ["python", "main.py"] and resume.endswith("--ckpt_path last")
    resumed = cli_main(shlex.split(resume)[2:]).trainer
    whole = cli_main([*run.words, "--checkpoint.dirpath", str(run.tmp / "whole")]).trainer
    assert resumed.global_step == whole.global_step == MAX_STEPS
    schedules = [t.lr_scheduler_configs[0].scheduler.state_dict() for t in (resumed, whole)]
    assert schedules[0] == schedules[1]


def _no_checkpoint(run: Run) -> None:
    assert not (run.tmp / "ckpt").exists() or not list((run.tmp / "ckpt").glob("*.ckpt"))


def _no_results(run: Run) -> None:
    assert not list((run.tmp / "logs").rglob("results*"))


def _output_unchanged(run: Run) -> None:
    """No CSV, no staging folder: the output folder holds the user's file alone, unchanged."""
    assert _listing(run.tmp / "out") == {"notes.txt": b"mine\n"}


def _next_predict_removes_the_staging_folder(run: Run) -> None:
    """A SIGKILLed run leaves its staging folder; the next run into the folder removes it (and
    nothing of the user's) and commits its own files."""
    out = run.tmp / "out"
    assert [p for p in out.iterdir() if STAGING_NAME.fullmatch(p.name)]
    cli_main(run.words)
    assert not [p for p in out.iterdir() if STAGING_NAME.fullmatch(p.name)]
    assert (out / CSV_NAME).is_file() and (out / "notes.txt").read_bytes() == b"mine\n"


def _next_fit_builds_whole_weights(run: Run) -> None:
    """The stopped build left nothing in the weights cache but its lock file; the next fit
    builds a whole file, and removes what a killed build left beside it."""
    cache = run.tmp / "torch_home" / "hub" / "checkpoints"
    (lock,) = cache.iterdir()
    path = Path(str(lock).removesuffix(".lock"))
    stale = path.with_name(f".{path.name}.partial-1")  # a killed build's half-written file
    stale.write_bytes(b"PK\x03\x04 cut short")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("TORCH_HOME", str(run.tmp / "torch_home"))
        patch.setattr(shapes_weights, "DEFAULT_PRETRAINING", TINY_RECIPE)
        cli_main(run.words)
    assert set(cache.iterdir()) == {lock, path, path.with_suffix(".json")}
    assert "conv1.weight" in torch.load(path, weights_only=True)


def _at_the_step_reached(run: Run) -> None:
    assert _saved_step(run) == STOP_STEP


PREDICT = "predict --ckpt_path {ckpt} --data.predict_dir {images} --output.output_dir {out} "
PREDICT += "--data.eval_batch_size 1"
FIT_STOPPED = f"fit, at step {STOP_STEP} of {MAX_STEPS}; saved "
NOT_BEGUN = "stopped by SIGTERM: fit, before its first step; no checkpoint saved"
EVALUATED = "stopped by SIGTERM: {}, after 1 of 2 batches; no results written"
PREDICTED = "predict, after 1 of 3 batches; no predictions written"
TERM, INT, KILL = signal.SIGTERM, signal.SIGINT, signal.SIGKILL

CASES = [
    Case("fit SIGTERM", "fit", TERM, 143, f"stopped by SIGTERM: {FIT_STOPPED}",
         _resumes_to_the_uninterrupted_schedule),
    Case("fit SIGTERM in the no-shape phase", "fit --no_shape.steps 20", TERM, 143, NOT_BEGUN,
         _no_checkpoint, phase="no_shape"),
    Case("fit SIGTERM in the shapes weights' build", "fit --model.weights shapes", TERM, 143,
         NOT_BEGUN, _next_fit_builds_whole_weights, phase="shapes"),
    Case("test SIGTERM", "test --ckpt_path {ckpt}", TERM, 143, EVALUATED.format("test"),
         _no_results),
    Case("predict SIGTERM", PREDICT, TERM, 143, f"stopped by SIGTERM: {PREDICTED}",
         _output_unchanged),
    Case("predict SIGKILL", PREDICT, KILL, -KILL, "", _next_predict_removes_the_staging_folder),
    Case("fit Ctrl-C", "fit", INT, 130, f"stopped by SIGINT: {FIT_STOPPED}", _at_the_step_reached),
    Case("validate SIGTERM", "validate --ckpt_path {ckpt}", TERM, 143,
         EVALUATED.format("validate"), _no_results),
    Case("predict Ctrl-C", PREDICT, INT, 130, f"stopped by SIGINT: {PREDICTED}", _output_unchanged),
]  # fmt: skip


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory: pytest.TempPathFactory, tiny_root: Path) -> Path:
    """A classifier checkpoint after one step, for the rows that evaluate or predict."""
    tmp = tmp_path_factory.mktemp("stopping_ckpt")
    cli_main(["fit", *_words(tmp, tiny_root), "--trainer.max_steps", "1"])
    return tmp / "ckpt" / "last.ckpt"


@pytest.fixture(autouse=True)
def one_thread() -> Iterator[None]:
    """The in-process runs on one core, as the subprocesses (2 cores shared by many)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _listing(folder: Path) -> dict[str, bytes | None]:
    """Every entry under `folder`: a file's bytes, None for a folder."""
    return {
        str(p.relative_to(folder)): p.read_bytes() if p.is_file() else None
        for p in folder.rglob("*")
    }


@pytest.mark.parametrize("case", CASES, ids=[case.id for case in CASES])
def test_a_stopped_run_says_where_and_loses_nothing(
    case: Case, tmp_path: Path, tiny_root: Path, checkpoint: Path
) -> None:
    images, out = tmp_path / "images", tmp_path / "out"
    images.mkdir()
    for source in sorted((tiny_root / "images" / "test").iterdir())[:3]:
        shutil.copy(source, images)
    out.mkdir()
    (out / "notes.txt").write_bytes(b"mine\n")
    subcommand, *rest = case.command.format(ckpt=checkpoint, images=images, out=out).split(" ", 1)
    words = [subcommand, *_words(tmp_path, tiny_root), *(rest[0].split() if rest else [])]
    marker = tmp_path / "paused"
    if case.phase:
        step = "2" if case.phase == "no_shape" else "1"
        command = ["-m", "helpers.pausing", case.phase, str(marker), step, *words]
    else:
        pause = ["--trainer.callbacks+=helpers.pausing.PauseAt"]
        pause += ["--trainer.callbacks.marker", str(marker)]
        pause += ["--trainer.callbacks.step", str(STOP_STEP if subcommand == "fit" else 1)]
        command = ["main.py", *words, *pause]
    status, stderr, seconds = _signal_when_paused(command, marker, case.signal, tmp_path)
    assert status == case.status, stderr
    assert seconds < DEADLINE_S
    assert case.line in stderr and "Traceback" not in stderr
    case.check(Run(words, tmp_path, stderr))


def _signal_when_paused(
    command: list[str], marker: Path, signum: signal.Signals, tmp: Path
) -> tuple[int, str, float]:
    """Run `python COMMAND`, send `signum` once it has paused; its status, stderr, and the
    seconds from the signal to its exit."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "TORCH_HOME": str(tmp / "torch_home")}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT / "tests"), env.get("PYTHONPATH")]))
    with (tmp / "stderr.txt").open("w+") as stderr:
        process = subprocess.Popen(
            [sys.executable, *command], cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=stderr
        )
        try:
            deadline = time.monotonic() + 300
            while not marker.exists() and process.poll() is None and time.monotonic() < deadline:
                time.sleep(0.1)
            assert marker.exists(), "the run ended or hung before its pause"
            process.send_signal(signum)
            sent = time.monotonic()
            status = process.wait(timeout=120)
            seconds = time.monotonic() - sent
        finally:
            if process.poll() is None:
                process.kill()
                process.wait()
        stderr.seek(0)
        return status, stderr.read(), seconds
