"""How fast `configs/sam_tiny.yaml`'s training step runs, in the layouts and precisions it could
use, each as a ratio to a float32 step with an NCHW image encoder at the same batch.

    python benchmarks/sam_tiny_step.py [--steps 20] [--warmup 3]
        [--output results/sam_tiny_step.json]

Every variant is `SamTuner.training_step` (the config's model, the same initial weights), its
backward pass and its AdamW step, on the same pre-drawn 48 x 64 batches of `SceneDataModule`'s
training scenes at the config's batch size, in one process, taking turns step by step so
that each sees the same machine; each is the median of its steps:

- float32 and bfloat16 autocast (what `--trainer.precision bf16-mixed` runs on a CPU);
- `ConvImageEncoder` in NCHW and channels-last (NHWC), its default.

It also reports the seconds to draw one training batch of scenes, which the fit's data loader
adds to each step.
"""

from __future__ import annotations

import argparse
import copy
import json
import statistics
import sys
import time
import warnings
from collections.abc import Callable
from pathlib import Path

import torch
import yaml
from machine import describe_machine
from torch import Tensor

from lit_gradcam.sam_training.scene_data import SceneBatches, SceneDataModule
from lit_gradcam.sam_training.tuner import SamTuner
from lit_gradcam.segmenters.conv_encoder import ConvImageEncoder

ROOT = Path(__file__).resolve().parents[1]
CONFIG = ROOT / "configs" / "sam_tiny.yaml"
#: The scenes' size: the shapes data's.
IMAGE_SIZE = (48, 64)
#: (name, bfloat16 autocast, channels-last encoder); the first is the peer.
VARIANTS = (
    ("fp32_nchw", False, False),
    ("fp32_channels_last", False, True),
    ("bf16_nchw", True, False),
    ("bf16_channels_last", True, True),
)


def variant_step(
    tuner: SamTuner, bf16: bool, channels_last: bool
) -> Callable[[tuple[Tensor, Tensor, Tensor]], None]:
    """One optimizer step of a copy of `tuner` with the given settings, as a callable."""
    tuner = copy.deepcopy(tuner)
    encoder = tuner.sam.image_encoder
    layout = ConvImageEncoder(
        encoder.img_size, encoder.neck.out_channels, channels_last=channels_last
    )
    layout.load_state_dict(encoder.state_dict())
    tuner.sam.image_encoder = layout.train()
    params = [p for p in tuner.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=tuner.hparams.lr)

    def step(batch: tuple[Tensor, Tensor, Tensor]) -> None:
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            loss = tuner.training_step(batch, 0)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    return step


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=20, help="timed steps per variant")
    parser.add_argument("--warmup", type=int, default=3, help="untimed steps per variant first")
    parser.add_argument("--output", type=Path, help="write the results as JSON here")
    args = parser.parse_args(argv)

    config = yaml.safe_load(CONFIG.read_text())
    data = SceneDataModule(**{**config["data"]["init_args"], "image_sizes": [IMAGE_SIZE]}).hparams
    torch.manual_seed(0)
    tuner = SamTuner(**config["model"]["init_args"])
    scenes = SceneBatches(
        (args.warmup + args.steps) * data.batch_size, data.batch_size,
        data.image_sizes, data.max_objects, data.seed, "train",
    )  # fmt: skip
    start = time.perf_counter()
    batches = [scenes[i] for i in range(len(scenes))]
    draw_seconds = (time.perf_counter() - start) / len(batches)
    steps = {name: variant_step(tuner, bf16, cl) for name, bf16, cl in VARIANTS}
    times: dict[str, list[float]] = {name: [] for name in steps}
    warnings.filterwarnings("ignore", message=".*self.log.*")  # no Trainer: logging is skipped
    for i, batch in enumerate(batches):
        for name, step in steps.items():
            start = time.perf_counter()
            step(batch)
            if i >= args.warmup:
                times[name].append(time.perf_counter() - start)
    medians = {name: statistics.median(values) for name, values in times.items()}
    peer = medians[VARIANTS[0][0]]
    rows = [
        {"variant": name, "seconds_per_step": round(s, 4), "ratio_to_fp32_nchw": round(s / peer, 3)}
        for name, s in medians.items()
    ]
    result = {
        "command": "python benchmarks/sam_tiny_step.py"
        + (f" --output {args.output}" if args.output else ""),
        "machine": describe_machine(),
        "batch": data.batch_size,
        "image_size": list(IMAGE_SIZE),
        "steps": args.steps,
        "draw_seconds_per_batch": round(draw_seconds, 4),
        "rows": rows,
    }
    text = json.dumps(result, indent=2)
    print(text)
    if args.output:
        args.output.write_text(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
