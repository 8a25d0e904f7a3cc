"""One `python main.py` command, timed, its numbers saved as a results file for the README.

    python benchmarks/timed_run.py --output results/sam_tiny/fit.json -- \\
        fit --config configs/sam_tiny.yaml
    python benchmarks/timed_run.py --output results/quickstart_sam_test.json -- \\
        test --config configs/quickstart_sam.yaml --ckpt_path last

Runs the command in this process (`lit_gradcam.cli.cli_main`) and writes the command, its wall
time, the machine, the trainer's final logged metrics and step, the images a validate or test
run scored, and, when the run's evaluation callback wrote one, the run's `results.json` /
`results_val.json` (every pipeline's metrics).
`scripts/render_results.py` turns these files into the README's tables.
"""

from __future__ import annotations

import argparse
import json
import shlex
import time
from pathlib import Path

import lightning as L
from machine import describe_machine

from lit_gradcam.cli import cli_main

#: The evaluation callback's results file for each subcommand.
RESULTS_FILE = {"test": "results.json", "validate": "results_val.json"}


def _images_scored(trainer: L.Trainer, subcommand: str) -> int | None:
    """Images in the validate / test loop just run (its batch limit applied); None otherwise."""
    if subcommand not in RESULTS_FILE:
        return None
    loader = trainer.test_dataloaders if subcommand == "test" else trainer.val_dataloaders
    batches = trainer.num_test_batches if subcommand == "test" else trainer.num_val_batches
    return min(len(loader.dataset), int(batches[0]) * loader.batch_size)


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--output", type=Path, required=True, help="JSON file to write")
    parser.add_argument("command", nargs="+", help="`main.py` arguments (after --)")
    args = parser.parse_args(argv)

    start = time.perf_counter()
    cli = cli_main(args.command)
    seconds = time.perf_counter() - start
    trainer = cli.trainer
    record = {
        "command": shlex.join(["python", "main.py", *args.command]),
        "seconds": round(seconds, 1),
        "machine": describe_machine(),
        "global_step": trainer.global_step,
        "images": _images_scored(trainer, args.command[0]),
        "metrics": {name: float(value) for name, value in trainer.callback_metrics.items()},
        "log_dir": trainer.log_dir,
    }
    if args.command[0] in RESULTS_FILE:
        results = Path(trainer.log_dir or ".") / RESULTS_FILE[args.command[0]]
        if results.is_file():
            record["results"] = json.loads(results.read_text())
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(record, indent=2) + "\n")
    return record


if __name__ == "__main__":
    main()
