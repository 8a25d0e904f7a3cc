"""Render the README's result tables from the committed files under `results/`.

    python scripts/render_results.py          # rewrite the README's generated blocks
    python scripts/render_results.py --check  # exit 1 if the README and the files disagree

Each generated block sits between `<!-- BEGIN name -->` and `<!-- END name -->` in README.md;
everything outside the markers is left alone. A test runs `--check`, so a number typed into
the README by hand, or a results file changed without re-rendering, fails the suite.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
RESULTS = ROOT / "results"

#: The recipe table's cells, in display order: (file stem, data, train images, recipe).
RECIPE_CELLS = (
    ("own20000_scratch", "own generator", 20000, "from scratch"),
    ("own20000_shapes", "own generator", 20000, "shapes-pretrained"),
    ("own3500_scratch", "own generator", 3500, "from scratch"),
    ("own3500_shapes", "own generator", 3500, "shapes-pretrained"),
    ("foreign3500_scratch", "foreign generator", 3500, "from scratch"),
    ("foreign3500_shapes", "foreign generator", 3500, "shapes-pretrained"),
)
#: Point metrics shown per pipeline, in column order.
PIPELINE_COLUMNS = (
    "hit_rate_fg", "iou", "iou_pixel", "distance_fg", "hit_rate_fg_cam", "distance_fg_cam",
    "hit_rate_bg", "distance_bg",
)  # fmt: skip


def _load(stem: str) -> dict:
    return json.loads((RESULTS / "recipes" / f"{stem}.json").read_text())


def _fmt(value: float | None, digits: int = 3) -> str:
    return "–" if value is None else f"{value:.{digits}f}"


def _oracle_iou(rows: list[dict], oracle: str = "GroundTruthCentroid") -> float:
    return next(r["iou"] for r in rows if r["strategy"].startswith(oracle))


def _rows(relative: str) -> list[dict]:
    """Pipeline rows of a results file: a recipe cell's, a results.json's, or a timed run's."""
    data = json.loads((RESULTS / relative).read_text())
    return data.get("results", data)["rows"]


def _best_method(rows: list[dict]) -> dict:
    """The non-oracle pipeline with the highest IoU."""
    return max((r for r in rows if not r["uses_ground_truth"]), key=lambda r: r["iou"])


def recipe_table() -> str:
    """Data x recipe: accuracy, the best non-oracle pipeline and fit time, one row a cell."""
    lines = [
        "| data | train images | recipe | fit | test acc | best strategy | hit_rate_fg | iou "
        "| GrabCut oracle iou | iou / oracle |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for stem, data, images, recipe in RECIPE_CELLS:
        cell = _load(stem)
        best, oracle = _best_method(cell["rows"]), _oracle_iou(cell["rows"])
        lines.append(
            f"| {data} | {images} | {recipe} | {cell['fit_seconds'] / 60:.1f} min "
            f"| {_fmt(cell['test_acc'])} | {best['strategy']} | {_fmt(best['hit_rate_fg'])} "
            f"| {_fmt(best['iou'])} | {_fmt(oracle)} | {_fmt(best['iou'] / oracle)} |"
        )
    return "\n".join(lines)


def recipe_commands() -> str:
    """The exact commands behind each cell of the recipe table."""
    blocks = []
    for stem, *_ in RECIPE_CELLS:
        cell = _load(stem)
        blocks.append(f"# {stem}\n{cell['fit_command']}\n{cell['test_command']}")
    return "```bash\n" + "\n".join(blocks) + "\n```"


def pipeline_table(relative: str) -> Callable[[], str]:
    """Every (segmenter, strategy) row of one results file (a path under `results/`)."""

    def render() -> str:
        rows = _rows(relative)
        lines = [
            "| segmenter | strategy | " + " | ".join(PIPELINE_COLUMNS) + " |",
            "|---|---|" + "---|" * len(PIPELINE_COLUMNS),
        ]
        for row in rows:
            name = row["strategy"] + (" (oracle: uses GT)" if row["uses_ground_truth"] else "")
            values = " | ".join(_fmt(row.get(column)) for column in PIPELINE_COLUMNS)
            lines.append(f"| {row['segmenter']} | {name} | {values} |")
        return "\n".join(lines)

    return render


def grabcut_ceiling() -> str:
    """GrabCut's oracle IoU before and after its edge refinement, on both generators."""
    runs = json.loads((RESULTS / "grabcut_foreign.json").read_text())["runs"]
    groups = ("overall", "opaque", "translucent", "circle", "square", "triangle", "star", "diamond")
    lines = ["| run | " + " | ".join(groups) + " |", "|---|" + "---|" * len(groups)]
    for label, run in runs.items():
        values = " | ".join(_fmt(run["groups"][g]["mean_iou"]) for g in groups)
        lines.append(f"| {label} | {values} |")
    return "\n".join(lines)


def shapes_weights() -> str:
    """The one-off build of `weights: shapes`: its recipe, validation accuracy and time."""
    note = json.loads((RESULTS / "shapes_weights_resnet18.json").read_text())
    recipe = note["recipe"]
    return (
        f"Built once for `{note['arch']}`: {recipe['train_size']} generated images (seed "
        f"{recipe['seed']}), {recipe['max_steps']} steps of {recipe['batch_size']}, mirror-only "
        f"augmentation; validation accuracy {note['val_acc']:.3f}; "
        f"{note['build_seconds'] / 60:.1f} min on the 2-core CPU, data generation included "
        "(`results/shapes_weights_resnet18.json`, the JSON note written beside the weights)."
    )


def fit_profile() -> str:
    """Where the quick start's fit spent its time (Lightning's SimpleProfiler)."""
    profile = json.loads((RESULTS / "profile_quickstart_fit.json").read_text())
    lines = ["| action | calls | total s | % of fit |", "|---|---|---|---|"]
    for row in profile["rows"]:
        action = row["action"].split("{")[0]  # ModelCheckpoint's repr lists its settings
        lines.append(f"| {action} | {row['calls']} | {row['total_s']:.1f} | {row['percent']:.1f} |")
    return "\n".join(lines)


def stem_cost() -> str:
    """The 2x-resolution stem's cost per training step, against torchvision's stem."""
    cost = json.loads((RESULTS / "stem_cost.json").read_text())
    return (
        f"`model.stem_maxpool: false` costs {cost['ratio']:.1f}x a training step of the default "
        f"stem ({cost['seconds_per_step_no_maxpool']:.2f} vs "
        f"{cost['seconds_per_step_maxpool']:.2f} s at batch {cost['batch']}, "
        f"{cost['threads']} threads; `{cost['command']}`, `results/stem_cost.json`)."
    )


#: Where sam_tiny is tested: (label, results file under results/sam_tiny/).
SAM_TINY_TESTS = (
    ("the quick start's test split", "test.json"),
    ("the foreign generator's test split", "test_foreign.json"),
)


def sam_tiny_training() -> str:
    """The small SAM's fit (wall time, steps) and its IoU from ground-truth prompts."""
    fit = json.loads((RESULTS / "sam_tiny" / "fit.json").read_text())
    lines = [
        "| data | images | IoU from the GT-centroid point | IoU from the GT box | command |",
        "|---|---|---|---|---|",
    ]
    for label, name in SAM_TINY_TESTS:
        run = json.loads((RESULTS / "sam_tiny" / name).read_text())
        metrics = run["metrics"]
        lines.append(
            f"| {label} | {run['images']} | {_fmt(metrics['test/iou_point'])} "
            f"| {_fmt(metrics['test/iou_box'])} | `{run['command']}` |"
        )
    return (
        f"`{fit['command']}`: {fit['global_step']} steps in {fit['seconds'] / 60:.1f} min "
        f"({fit['machine']}; `results/sam_tiny/`).\n\n" + "\n".join(lines)
    )


def prompt_following() -> str:
    """Per segmenter: does the mask follow the point, on two-object scenes?"""
    run = json.loads((RESULTS / "prompt_following.json").read_text())
    lines = [
        "| segmenter | IoU with the shape pointed at | mask is the other shape "
        "| background point: IoU with a shape |",
        "|---|---|---|---|",
    ]
    for row in run["rows"]:
        lines.append(
            f"| {row['segmenter']} | {_fmt(row['iou_pointed'])} "
            f"| {100 * row['other_object']:.1f} % | {_fmt(row['background_object_iou'])} |"
        )
    return (
        f"`{run['command']}`: {run['scenes']} two-object scenes ({run['machine']}; "
        "`results/prompt_following.json`).\n\n" + "\n".join(lines)
    )


def sam_summary() -> str:
    """Per segmenter: the best non-oracle pipeline against that segmenter's oracles."""
    run = json.loads((RESULTS / "quickstart_sam_test.json").read_text())
    rows = run["results"]["rows"]
    lines = [
        "| segmenter | best strategy | hit_rate_fg | iou | oracle iou: GT point | GT box "
        "| iou / point oracle |",
        "|---|---|---|---|---|---|---|",
    ]
    for segmenter in dict.fromkeys(row["segmenter"] for row in rows):
        mine = [row for row in rows if row["segmenter"] == segmenter]
        best, point = _best_method(mine), _oracle_iou(mine)
        lines.append(
            f"| {segmenter} | {best['strategy']} | {_fmt(best['hit_rate_fg'])} "
            f"| {_fmt(best['iou'])} | {_fmt(point)} | {_fmt(_oracle_iou(mine, 'GroundTruthBox'))} "
            f"| {_fmt(best['iou'] / point)} |"
        )
    return (
        f"`{run['command']}`: {run['results']['num_images']} test images, both segmenters and "
        f"every strategy in {run['seconds'] / 60:.1f} min ({run['machine']}; "
        "`results/quickstart_sam_test.json`).\n\n" + "\n".join(lines)
    )


def sam_batched_decode() -> str:
    """Batched mask decoding against the per-image loop, one line per measured model."""
    lines = [
        "| model | images | masks equal | decode: loop / batched | train step: loop / batched |",
        "|---|---|---|---|---|",
    ]
    for path in sorted((RESULTS / "sam_batched_decode").glob("*.json")):
        run = json.loads(path.read_text())
        lines.append(
            f"| {run['model_type']} ({run['device']}, {run['machine']}) | {run['images']} "
            f"| {'yes' if run['masks_equal'] else 'NO'} "
            f"| {run['decode_loop_s'] / run['decode_batched_s']:.2f}x "
            f"| {run['train_loop_s'] / run['train_batched_s']:.2f}x |"
        )
    return "\n".join(lines)


def sam_fused_attention() -> str:
    """sam_tiny's training step with segment_anything's attention against the fused one."""
    run = json.loads((RESULTS / "sam_fused_attention.json").read_text())
    official, fused = run["official_step_s"], run["fused_step_s"]
    return (
        f"{run['model_type']} training step, {run['images']} images ({run['machine']}): "
        f"{official:.3f} s with segment_anything's `Attention`, {fused:.3f} s fused, "
        f"**{official / fused:.2f}x** (`results/sam_fused_attention.json`)."
    )


#: Generated README blocks: marker name -> renderer.
BLOCKS: dict[str, Callable[[], str]] = {
    "recipe-table": recipe_table,
    "recipe-commands": recipe_commands,
    "quickstart-test": pipeline_table("recipes/own20000_shapes.json"),
    "foreign-test": pipeline_table("recipes/foreign3500_shapes.json"),
    "sweep-val": pipeline_table("sweep_val.json"),
    "grabcut-ceiling": grabcut_ceiling,
    "shapes-weights": shapes_weights,
    "fit-profile": fit_profile,
    "stem-cost": stem_cost,
    "sam-tiny-training": sam_tiny_training,
    "prompt-following": prompt_following,
    "quickstart-sam-summary": sam_summary,
    "quickstart-sam-test": pipeline_table("quickstart_sam_test.json"),
    "sweep-val-sam": pipeline_table("sweep_val_sam.json"),
    "sam-batched-decode": sam_batched_decode,
    "sam-fused-attention": sam_fused_attention,
}


def render(readme: str) -> str:
    """`readme` with every generated block replaced by a fresh rendering."""
    for name, renderer in BLOCKS.items():
        pattern = re.compile(
            rf"(<!-- BEGIN {re.escape(name)} -->\n)(?:.*?\n)?(<!-- END {re.escape(name)} -->)", re.S
        )
        if not pattern.search(readme):
            raise ValueError(f"README.md lacks <!-- BEGIN {name} --> ... <!-- END {name} -->")
        readme = pattern.sub(lambda m, r=renderer: m.group(1) + r() + "\n" + m.group(2), readme)
    return readme


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="only compare; exit 1 on change")
    args = parser.parse_args(argv)
    current = README.read_text()
    fresh = render(current)
    if args.check:
        if fresh != current:
            print("README.md is out of date: run `python scripts/render_results.py`")
            return 1
        return 0
    README.write_text(fresh)
    return 0


if __name__ == "__main__":
    sys.exit(main())
