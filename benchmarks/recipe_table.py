"""One cell of the README's data x recipe table: `fit` then `test`, timed, written as JSON.

    python benchmarks/recipe_table.py --name foreign3500_scratch --data-root data/foreign3500 \\
        --config configs/quickstart.yaml --config configs/from_scratch.yaml \\
        --output results/recipes/foreign3500_scratch.json [--generate] [--warm] \\
        [-- extra CLI overrides]

Runs `python main.py fit` and `python main.py test --ckpt_path last` with the given configs
(default: the quick start's), each in its own process, as on a fresh machine: torch hub's
cache (`TORCH_HOME`) is a new empty folder, so whatever `fit` builds on first use (the
`weights: shapes` file) is part of its time. The dataset folder must exist, unless
`--generate`: then it must not, and `fit` generates it, also inside its time. `--warm` times a
second `fit` (into its own checkpoint folder) with that cache and data in place. It records the
wall time of each run, the notes of any weights built, test accuracy, every pipeline's metrics
and the exact commands.

`--retest` runs only the `test` of a cell whose `--output` file and checkpoint exist, after a
change that moves test results but not training (a segmenter or strategy default): the fit's
fields stay as that file has them, the test's are replaced, and `retested` names the machine
the test ran on. The cell's commands must be the file's.
`scripts/render_results.py` turns these files into the README's tables.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from machine import describe_machine

ROOT = Path(__file__).resolve().parents[1]
#: The fields a `--retest` keeps from the cell's fit.
FIT_KEYS = (
    "name",
    "data_root",
    "configs",
    "overrides",
    "fit_command",
    "fresh_machine",
    "fit_seconds",
    "warm_fit_seconds",
    "built_weights",
    "machine",
)
#: What results.json says of the classifier, copied when present.
CLASSIFICATION_KEYS = (
    "classes",
    "multi_label",
    "class_accuracy",
    "class_acc_macro",
    "class_f1",
    "class_f1_macro",
    "num_objects",
)


def _run(command: list[str], torch_home: str) -> float:
    """Run one CLI command from the repo root with the given torch hub cache; its wall time
    in seconds."""
    print("$", shlex.join(command), flush=True)
    start = time.perf_counter()
    subprocess.run(command, cwd=ROOT, check=True, env={**os.environ, "TORCH_HOME": torch_home})
    return time.perf_counter() - start


def test_fields(results: dict, test_command: list[str], test_seconds: float) -> dict:
    """A cell's test fields from its run's results.json."""
    return {
        "test_command": shlex.join(["python", *test_command[1:]]),
        "test_seconds": round(test_seconds, 1),
        "test_acc": results["test/acc"],
        "num_images": results["num_images"],
        "rows": results["rows"],
        "clicks": results.get("clicks"),  # the simulated user's scores per segmenter
        # per-class accuracy (one class per image) or F1 (multi-label), with what a folder of
        # its own classes adds: the classes and the ground-truth objects scored
        **{key: results[key] for key in CLASSIFICATION_KEYS if key in results},
    }


def check_same_cell(previous: dict, fit_command: str) -> None:
    """Refuse to retest when the cell's fit command is not the one that made `previous` (a
    cell's record) and its checkpoint."""
    if previous.get("fit_command") != fit_command:
        raise SystemExit(
            "--retest: the output file's fit_command is\n  "
            f"{previous.get('fit_command')}\nbut this cell's is\n  {fit_command}"
        )


def retested(previous: dict, tested: dict, machine: str) -> dict:
    """`previous` (a cell's record) with its test fields replaced by `tested`."""
    return {
        **{key: previous[key] for key in FIT_KEYS if key in previous},
        **tested,
        "retested": {"machine": machine},
    }


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--name", required=True, help="the cell's name: logs and checkpoints")
    parser.add_argument("--data-root", required=True, help="a shapes-layout folder")
    parser.add_argument(
        "--generate", action="store_true", help="--data-root is absent: fit generates it"
    )
    parser.add_argument("--warm", action="store_true", help="also time a second, warm fit")
    parser.add_argument(
        "--config",
        action="append",
        help="config file(s), applied in order (default: configs/quickstart.yaml)",
    )
    parser.add_argument("--output", required=True, help="JSON file to write")
    parser.add_argument(
        "--retest", action="store_true", help="test the cell's checkpoint again, keep its fit"
    )
    parser.add_argument("overrides", nargs="*", help="extra `main.py fit` arguments (after --)")
    args = parser.parse_args(argv)

    configs = args.config or ["configs/quickstart.yaml"]
    data_root = ROOT / args.data_root
    output = Path(args.output)
    if args.retest and not output.is_file():
        parser.error(f"--retest: {args.output} does not exist (run the cell without --retest)")
    if not args.retest and args.generate == data_root.exists():
        parser.error(
            f"--data-root {args.data_root} " + ("exists" if args.generate else "does not exist")
        )

    def command(subcommand: str, name: str, *more: str) -> list[str]:
        return [
            sys.executable, "main.py", subcommand,
            *(arg for config in configs for arg in ("--config", config)),
            "--data.root", args.data_root,
            "--data.generate", str(args.generate).lower(),
            "--checkpoint.dirpath", f"checkpoints/recipes/{name}",
            "--trainer.logger.init_args.name", f"recipes/{name}",
            *args.overrides, *more,
        ]  # fmt: skip

    fit = command("fit", args.name)
    test = command("test", args.name, "--ckpt_path", "last")
    log_root = ROOT / "lightning_logs" / "recipes" / args.name
    if args.retest:
        previous = json.loads(output.read_text())
        check_same_cell(previous, shlex.join(["python", *fit[1:]]))
        with tempfile.TemporaryDirectory(prefix="recipe_torch_home_") as torch_home:
            test_seconds = _run(test, torch_home)
        tested = test_fields(_latest_results(log_root), test, test_seconds)
        record = retested(previous, tested, describe_machine())
        output.write_text(json.dumps(record, indent=2) + "\n")
        print(f"wrote {output}: test again, test/acc {record['test_acc']:.3f}")
        return record
    with tempfile.TemporaryDirectory(prefix="recipe_torch_home_") as torch_home:
        fit_seconds = _run(fit, torch_home)
        warm_seconds = _run(command("fit", f"{args.name}_warm"), torch_home) if args.warm else None
        test_seconds = _run(test, torch_home)
        built = [  # the JSON notes of the weights the first fit built (`weights: shapes`)
            json.loads(note.read_text())
            for note in sorted(Path(torch_home).glob("hub/checkpoints/*.json"))
        ]
    record = {
        "name": args.name,
        "data_root": args.data_root,
        "configs": configs,
        "overrides": args.overrides,
        "fit_command": shlex.join(["python", *fit[1:]]),
        "fresh_machine": "empty TORCH_HOME"
        + (", no data folder (fit generates it)" if args.generate else ""),
        "fit_seconds": round(fit_seconds, 1),
        "warm_fit_seconds": None if warm_seconds is None else round(warm_seconds, 1),
        "built_weights": built,
        "machine": describe_machine(),
        **test_fields(_latest_results(log_root), test, test_seconds),
    }
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(json.dumps(record, indent=2) + "\n")
    print(f"wrote {output}: fit {fit_seconds:.0f} s, test/acc {record['test_acc']:.3f}")
    return record


def _latest_results(log_root: Path) -> dict:
    """The results.json of the cell's newest logged run."""
    results_file = max(log_root.glob("version_*/results.json"), key=lambda p: p.stat().st_mtime)
    return json.loads(results_file.read_text())


if __name__ == "__main__":
    main()
