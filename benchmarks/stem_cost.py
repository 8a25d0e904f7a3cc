"""What the 2x-resolution stem costs: one training step of ResNet-18 with and without the stem's
max-pool, on 48x64 batches, timed alternately in one process so both see the same machine.

    python benchmarks/stem_cost.py [--batch 64] [--steps 10] [--output results/stem_cost.json]

Prints seconds per step of each and their ratio, and writes them to `--output` if given.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F

from lit_gradcam.classifier.backbones import build_resnet


def main(argv: list[str] | None = None) -> float:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--output", help="JSON file for the timings")
    args = parser.parse_args(argv)
    torch.manual_seed(0)
    models = {maxpool: build_resnet("resnet18", 5, None, maxpool) for maxpool in (True, False)}
    optimizers = {k: torch.optim.AdamW(m.parameters()) for k, m in models.items()}
    images, labels = torch.randn(args.batch, 3, 48, 64), torch.randint(0, 5, (args.batch,))
    seconds = dict.fromkeys(models, 0.0)
    for step in range(args.steps + 1):  # step 0 warms up and is not timed
        for maxpool, model in models.items():
            start = time.perf_counter()
            loss = F.cross_entropy(model(images), labels)
            optimizers[maxpool].zero_grad()
            loss.backward()
            optimizers[maxpool].step()
            if step:
                seconds[maxpool] += time.perf_counter() - start
    with_pool, without = seconds[True] / args.steps, seconds[False] / args.steps
    print(f"batch {args.batch}, {torch.get_num_threads()} threads")
    print(f"stem with max-pool (layer2 6x8):     {with_pool:.3f} s/step")
    print(f"stem without max-pool (layer2 12x16): {without:.3f} s/step")
    print(f"ratio: {without / with_pool:.2f}x")
    if args.output:
        record = {
            "command": "python benchmarks/stem_cost.py " + " ".join(argv or sys.argv[1:]),
            "batch": args.batch,
            "threads": torch.get_num_threads(),
            "seconds_per_step_maxpool": round(with_pool, 4),
            "seconds_per_step_no_maxpool": round(without, 4),
            "ratio": round(without / with_pool, 3),
        }
        Path(args.output).write_text(json.dumps(record, indent=2) + "\n")
    return without / with_pool


if __name__ == "__main__":
    main()
