"""How fast a training step runs: the quick start's whole step, and the settings it is made of,
each as a ratio to a plain float32 NCHW torchvision ResNet-18 step at the same batch.

    python benchmarks/train_step.py [--batch 64] [--steps 30] [--warmup 5] [--compile]
        [--output results/train_step.json] [--check results/train_step.json]

All variants train the same ResNet-18 on 48x64 batches, in one process, taking turns step by
step so that each sees the same machine; each is the median of its steps:

- plain: float32, NCHW, AdamW (torch's default implementation), no augmentation;
- channels_last; bf16 autocast; bf16 autocast with channels_last; the same with fused AdamW;
  optionally `torch.compile` of the last (`--compile`: it compiles for minutes on a CPU);
- augmentation: `TrainAugmentation` alone, at full strength, on one batch;
- presence_net: one step of the no-shape flag's `ShapePresence` (`NoShapeFlag`'s phase, which
  the quick start's `fit` runs before the classifier's steps, as many steps as the classifier's);
- quickstart_with_flag: the quick start's step plus the presence phase spread over it (one
  presence step per classifier step): what a fit costs per classifier step, the flag included;
- quick start: `python main.py fit --config configs/quickstart.yaml`'s own step, through
  Lightning with its data loader, augmentation at full strength and the CLI's default
  precision, timed from one batch's end to the next on a small generated folder (the weights
  do not change a step's cost, so none are built, and its presence phase is timed apart, as
  presence_net); the variants run between its steps. Its network is the config's
  (`model.stages`), not necessarily the variants' whole ResNet-18.

`--check FILE` holds the README's first-run times to the code: it exits with status 1 when the
quick start's step with its flag (`quickstart_with_flag`), as a ratio to plain measured in this
run, is more than `--tolerance` (relative) above the ratio in FILE, the committed measurement
those times were taken with. A ratio, not seconds, so a faster or slower machine does not fail
it.

GFLOP/s counts a step's floating-point operations (forward and backward, as
`torch.utils.flop_counter` counts them) over its time: the plain ResNet-18's for the variants,
the quick start's own network's for the quick start.
"""

from __future__ import annotations

import argparse
import copy
import json
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import lightning as L
import torch
import torch.nn.functional as F
import torchvision
from machine import describe_machine
from torch.utils.flop_counter import FlopCounterMode

from lit_gradcam.classifier.augmentation import TrainAugmentation
from lit_gradcam.classifier.presence import ShapePresence
from lit_gradcam.cli import cli_main
from lit_gradcam.precision import default_precision

ROOT = Path(__file__).resolve().parents[1]
IMAGE_SIZE = (48, 64)


def raw_step(
    batch: int, channels_last: bool, bf16: bool, fused: bool, compile_model: bool = False
) -> Callable[[], None]:
    """One optimizer step of a fresh ResNet-18 with the given settings, as a callable."""
    model = torchvision.models.resnet18(num_classes=5)
    memory_format = torch.channels_last if channels_last else torch.contiguous_format
    model = model.to(memory_format=memory_format)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3, fused=fused or None)
    network = torch.compile(model) if compile_model else model
    images = torch.randn(batch, 3, *IMAGE_SIZE).contiguous(memory_format=memory_format)
    labels = torch.randint(0, 5, (batch,))

    def step() -> None:
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            loss = F.cross_entropy(network(images), labels)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    return step


def augmentation_step(batch: int) -> Callable[[], None]:
    """The quick start's augmentation of one normalised batch, at full strength."""
    augmentation = TrainAugmentation()
    images = torch.randn(batch, 3, *IMAGE_SIZE)
    return lambda: augmentation(images)


def presence_step(batch: int, bf16: bool) -> Callable[[], None]:
    """One optimizer step of the no-shape flag's presence phase (`PresenceTraining`'s loss and
    its fused AdamW), at the quick start's precision."""
    net = ShapePresence()
    optimizer = torch.optim.AdamW(net.parameters(), lr=1e-3, fused=True)
    images = torch.randn(batch, 3, *IMAGE_SIZE)
    masks = torch.rand(batch, *IMAGE_SIZE) < 0.1
    generator = torch.Generator().manual_seed(0)

    def step() -> None:
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            loss = net.loss(images, masks, generator)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    return step


def step_flops(model: torch.nn.Module, batch: int) -> int:
    """Floating-point operations of one step's forward and backward through `model`."""
    images, labels = torch.randn(batch, 3, *IMAGE_SIZE), torch.randint(0, 5, (batch,))
    with FlopCounterMode(display=False) as counter:
        F.cross_entropy(model(images), labels).backward()
    return counter.get_total_flops()


class _Interleaved(L.Callback):
    """Times the quick start's steps as Lightning runs them, from one training batch's end to
    the next (loading, augmentation, forward, backward, optimizer step), and after each one
    runs every variant once, so that all of them take turns step by step on the same machine.
    The first `warmup` steps are not recorded."""

    def __init__(self, variants: dict[str, Callable[[], None]], warmup: int) -> None:
        self.variants, self.warmup = variants, warmup
        self.samples: dict[str, list[float]] = {"quickstart": [], **{n: [] for n in variants}}
        self.last: float | None = None
        self.steps = 0

    def on_train_batch_end(self, *args: object) -> None:
        now = time.perf_counter()
        record = self.steps >= self.warmup
        if self.last is not None and record:
            self.samples["quickstart"].append(now - self.last)
        for name, step in self.variants.items():
            start = time.perf_counter()
            step()
            if record:
                self.samples[name].append(time.perf_counter() - start)
        self.steps += 1
        self.last = time.perf_counter()


def run_interleaved(
    batch: int, steps: int, warmup: int, variants: dict[str, Callable[[], None]], scratch: Path
) -> tuple[dict[str, float], str, int]:
    """Median seconds per step of the quick start's own training step and of each variant,
    interleaved (see `_Interleaved`), the precision the quick start ran at, and the
    floating-point operations of its network's step."""
    cli = cli_main(
        [
            "--config", str(ROOT / "configs" / "quickstart.yaml"),
            "--model.weights", "null",
            "--model.augmentation_ramp", "[0.0, 0.0]",
            "--data.root", str(scratch / "data"),
            "--data.train_size", str(batch * (steps + warmup + 2)),
            "--data.val_size", "8",
            "--data.test_size", "0",
            "--data.batch_size", str(batch),
            "--trainer.max_steps", str(steps + warmup + 1),
            "--no_shape.steps", "0",  # its phase is timed apart (presence_net)
            "--trainer.limit_val_batches", "0",
            "--trainer.logger", "false",
            "--checkpoint.dirpath", str(scratch / "checkpoints"),
            "--trainer.enable_progress_bar", "false",
            "--trainer.enable_model_summary", "false",
            "--trainer.default_root_dir", str(scratch),
        ],
        run=False,
    )  # fmt: skip
    flops = step_flops(copy.deepcopy(cli.model.model), batch)  # before any channels-last
    timer = _Interleaved(variants, warmup)
    cli.trainer.callbacks.append(timer)
    cli.trainer.fit(cli.model, datamodule=cli.datamodule)
    medians = {name: statistics.median(values) for name, values in timer.samples.items()}
    return medians, str(cli.trainer.precision), flops


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--steps", type=int, default=30, help="timed steps of each")
    parser.add_argument("--warmup", type=int, default=5, help="untimed steps of each first")
    parser.add_argument("--compile", action="store_true", help="also time torch.compile")
    parser.add_argument("--output", help="JSON file for the results")
    parser.add_argument("--check", help="committed results: fail if the step got slower")
    parser.add_argument(
        "--tolerance", type=float, default=0.15, help="--check's allowed relative rise"
    )
    args = parser.parse_args(argv)
    torch.manual_seed(0)
    b = args.batch
    variants = {
        "plain": raw_step(b, channels_last=False, bf16=False, fused=False),
        "channels_last": raw_step(b, channels_last=True, bf16=False, fused=False),
        "bf16": raw_step(b, channels_last=False, bf16=True, fused=False),
        "bf16_channels_last": raw_step(b, channels_last=True, bf16=True, fused=False),
        "bf16_channels_last_fused_adamw": raw_step(b, channels_last=True, bf16=True, fused=True),
        "augmentation": augmentation_step(b),
        "presence_net": presence_step(b, bf16="bf16" in default_precision()),
    }
    if args.compile:
        variants["compiled"] = raw_step(b, True, True, True, compile_model=True)
    with tempfile.TemporaryDirectory(prefix="train_step_") as scratch:
        seconds, precision, quickstart_flops = run_interleaved(
            b, args.steps, args.warmup, variants, Path(scratch)
        )
    seconds["quickstart_with_flag"] = seconds["quickstart"] + seconds["presence_net"]
    flops = {"plain": step_flops(torchvision.models.resnet18(num_classes=5), b)}
    flops["quickstart"] = quickstart_flops
    plain = seconds["plain"]
    rows = [
        {
            "variant": name,
            "seconds_per_step": round(value, 4),
            "ratio_to_plain": round(value / plain, 3),
            "gflops_per_second": None
            if name in ("augmentation", "presence_net", "quickstart_with_flag")
            else round(flops.get(name, flops["plain"]) / value / 1e9, 1),
        }
        for name, value in seconds.items()
    ]
    print(f"batch {b}, {torch.get_num_threads()} threads, quick start precision {precision}")
    for row in rows:
        gflops = "" if row["gflops_per_second"] is None else f"{row['gflops_per_second']} GFLOP/s"
        print(
            f"{row['variant']:32s} {row['seconds_per_step']:.4f} s/step  "
            f"{row['ratio_to_plain']:.3f}x plain  {gflops}"
        )
    record = {
        "command": "python benchmarks/train_step.py " + " ".join(argv or sys.argv[1:]),
        "machine": describe_machine(),
        "batch": b,
        "quickstart_precision": precision,
        "gflop_per_step": round(flops["plain"] / 1e9, 2),
        "quickstart_gflop_per_step": round(flops["quickstart"] / 1e9, 2),
        "rows": rows,
    }
    if args.output:
        Path(args.output).write_text(json.dumps(record, indent=2) + "\n")
    if args.check:
        _check(rows, Path(args.check), args.tolerance)
    return record


def _ratio(rows: list[dict], variant: str) -> float:
    """`variant`'s ratio to plain among result rows."""
    return next(row["ratio_to_plain"] for row in rows if row["variant"] == variant)


def _check(rows: list[dict], committed: Path, tolerance: float) -> None:
    """Exit 1 if the quick start's step with its flag rose past `tolerance` over `committed`."""
    then = _ratio(json.loads(committed.read_text())["rows"], "quickstart_with_flag")
    now = _ratio(rows, "quickstart_with_flag")
    verdict = "holds" if now <= then * (1 + tolerance) else "RISEN"
    print(f"quickstart_with_flag: {now:.3f}x plain now, {then:.3f}x in {committed}: {verdict}")
    if verdict != "holds":
        sys.exit(
            f"the quick start's step is {now / then - 1:.0%} slower relative to plain than in "
            f"{committed}: re-measure benchmarks/recipe_table.py and re-render the README"
        )


if __name__ == "__main__":
    main()
