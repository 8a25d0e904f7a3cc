"""One cell of the README's data x recipe table: `fit` then `test`, timed, written as JSON.

    python benchmarks/recipe_table.py --name foreign3500_scratch --data-root data/foreign3500 \\
        --config configs/quickstart.yaml --config configs/from_scratch.yaml \\
        --output results/recipes/foreign3500_scratch.json [-- extra CLI overrides]

Runs `python main.py fit` and `python main.py test --ckpt_path last` with the given configs
(default: the quick start's) on an existing dataset folder (nothing is generated), each in
its own process, and records the wall time of each, test accuracy, every pipeline's metrics
and the exact commands. `scripts/render_results.py` turns these files into the README's table.
"""

from __future__ import annotations

import argparse
import json
import platform
import shlex
import subprocess
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]


def _run(command: list[str]) -> float:
    """Run one CLI command from the repo root; its wall time in seconds."""
    print("$", shlex.join(command), flush=True)
    start = time.perf_counter()
    subprocess.run(command, cwd=ROOT, check=True)
    return time.perf_counter() - start


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--name", required=True, help="the cell's name: logs and checkpoints")
    parser.add_argument("--data-root", required=True, help="an existing homework-layout folder")
    parser.add_argument(
        "--config",
        action="append",
        help="config file(s), applied in order (default: configs/quickstart.yaml)",
    )
    parser.add_argument("--output", required=True, help="JSON file to write")
    parser.add_argument("overrides", nargs="*", help="extra `main.py fit` arguments (after --)")
    args = parser.parse_args(argv)

    configs = args.config or ["configs/quickstart.yaml"]
    common = [
        *(arg for config in configs for arg in ("--config", config)),
        "--data.root", args.data_root,
        "--data.generate", "false",
        "--checkpoint.dirpath", f"checkpoints/recipes/{args.name}",
        "--trainer.logger.init_args.name", f"recipes/{args.name}",
    ]  # fmt: skip
    fit = [sys.executable, "main.py", "fit", *common, *args.overrides]
    test = [sys.executable, "main.py", "test", *common, *args.overrides, "--ckpt_path", "last"]
    fit_seconds = _run(fit)
    test_seconds = _run(test)
    log_root = ROOT / "lightning_logs" / "recipes" / args.name
    results_file = max(log_root.glob("version_*/results.json"), key=lambda p: p.stat().st_mtime)
    results = json.loads(results_file.read_text())
    record = {
        "name": args.name,
        "data_root": args.data_root,
        "configs": configs,
        "overrides": args.overrides,
        "fit_command": shlex.join(["python", *fit[1:]]),
        "test_command": shlex.join(["python", *test[1:]]),
        "fit_seconds": round(fit_seconds, 1),
        "test_seconds": round(test_seconds, 1),
        "machine": f"{platform.machine()}, {torch.get_num_threads()} torch threads",
        "test_acc": results["test/acc"],
        "num_images": results["num_images"],
        "rows": results["rows"],
        "class_accuracy": results["class_accuracy"],
    }
    output = Path(args.output)
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(json.dumps(record, indent=2) + "\n")
    print(f"wrote {output}: fit {fit_seconds:.0f} s, test/acc {record['test_acc']:.3f}")
    return record


if __name__ == "__main__":
    main()
