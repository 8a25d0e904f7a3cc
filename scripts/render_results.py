"""Render the tables of README.md and docs/*.md from the committed files under `results/`.

    python scripts/render_results.py          # rewrite the generated blocks
    python scripts/render_results.py --check  # exit 1 if a page and the files disagree

Each generated block sits between `<!-- BEGIN name -->` and `<!-- END name -->` in exactly one
of the pages; everything outside the markers is left alone. A test runs `--check`, so a number
typed into a page by hand, or a results file changed without re-rendering, fails the suite.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections.abc import Callable
from pathlib import Path

from lit_gradcam.evaluation.class_map_scoring import CLASS_MAP_COLUMNS

ROOT = Path(__file__).resolve().parents[1]
#: The pages that hold generated blocks.
PAGES = (ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md")))
RESULTS = ROOT / "results"

#: The recipe table's cells, in display order: (file stem, data, train images, recipe).
RECIPE_CELLS = (
    ("own20000_shapes", "own generator", 20000, "shapes-pretrained"),
    ("foreign3500_shapes", "foreign generator", 3500, "shapes-pretrained"),
)
#: Metrics shown per pipeline, in column order; a column no row of a file has is left out
#: (files written before a metric existed).
PIPELINE_COLUMNS = (
    "hit_rate_fg", "iou", "iou_pixel", "distance_fg", "hit_rate_fg_cam", "distance_fg_cam",
    "hit_rate_bg", "distance_bg", "worth_clicks",
)  # fmt: skip


def _load(stem: str) -> dict:
    return json.loads((RESULTS / "recipes" / f"{stem}.json").read_text())


def _fmt(value: float | None, digits: int = 3) -> str:
    return "–" if value is None else f"{value:.{digits}f}"


#: The ground-truth point oracle's row: the innermost point, or in older files the centroid.
POINT_ORACLES = ("GroundTruthPoint", "GroundTruthCentroid")


def _oracle_iou(rows: list[dict], oracle: str | None = None) -> float:
    """The IoU of the `oracle` row (default: the ground-truth point oracle's)."""
    names = POINT_ORACLES if oracle is None else (oracle,)
    return next(r["iou"] for r in rows if r["strategy"] in names)


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
        "| data | train images | recipe | first fit | test acc | best strategy | hit_rate_fg | iou "
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


def _row_table(rows: list[dict], columns: list[str]) -> str:
    """A (segmenter, strategy) row per pipeline, with `columns` of its metrics; oracles marked."""
    lines = [
        "| segmenter | strategy | " + " | ".join(columns) + " |",
        "|---|---|" + "---|" * len(columns),
    ]
    for row in rows:
        name = row["strategy"] + (" (oracle: uses GT)" if row["uses_ground_truth"] else "")
        values = " | ".join(_fmt(row.get(column)) for column in columns)
        lines.append(f"| {row['segmenter']} | {name} | {values} |")
    return "\n".join(lines)


def pipeline_table(relative: str) -> Callable[[], str]:
    """Every (segmenter, strategy) row of one results file (a path under `results/`)."""

    def render() -> str:
        rows = _rows(relative)
        return _row_table(rows, [c for c in PIPELINE_COLUMNS if any(c in row for row in rows)])

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


#: The runs whose first fit on a fresh machine the README times: (file stem, what it is).
FIRST_RUNS = (
    ("own20000_shapes", "quick start (`configs/quickstart.yaml`, data generated by `fit`)"),
    ("foreign3500_shapes", "quick start config on a 3500/1000/500 foreign folder"),
)


def first_runs() -> str:
    """Each timed run's first `fit` on a fresh machine, its warm re-run and its `test`."""
    lines = [
        "| run | first fit (fresh machine) | warm re-run | test | test acc "
        "| CamConsensus hit_rate_fg | CamConsensus iou |",
        "|---|---|---|---|---|---|---|",
    ]
    for stem, label in FIRST_RUNS:
        cell = _load(stem)
        consensus = next(r for r in cell["rows"] if r["strategy"].startswith("CamConsensus"))
        warm = cell.get("warm_fit_seconds")
        lines.append(
            f"| {label} | {cell['fit_seconds'] / 60:.1f} min "
            f"| {'–' if warm is None else f'{warm / 60:.1f} min'} "
            f"| {cell['test_seconds'] / 60:.1f} min | {_fmt(cell['test_acc'])} "
            f"| {_fmt(consensus['hit_rate_fg'])} | {_fmt(consensus['iou'])} |"
        )
    return "\n".join(lines)


def shapes_weights() -> str:
    """The build of `weights: shapes` inside a first fit: its recipe, accuracy and time."""
    stem = "foreign3500_shapes"
    (note,) = _load(stem)["built_weights"]
    recipe = note["recipe"]
    low, high = recipe["train_shape_sizes"]
    return (
        f"Built for `{note['arch']}` with {note['stages']} residual stages (the quick start's "
        f"`model.stages`) inside the first fit: {recipe['train_size']} generated images "
        f"(seed {recipe['seed']}) with shapes {low:.0f}-{high:.0f} px across, "
        f"{recipe['max_steps']} steps of {recipe['batch_size']}, mirror-only augmentation, "
        f"{note['precision']}; validation accuracy {note['val_acc']:.3f} on the dataset's own "
        f"sizes; {note['build_seconds'] / 60:.1f} min, drawing the images included (the JSON "
        f"note written beside the weights, kept in `results/recipes/{stem}.json`)."
    )


def _step_table(caption: str, columns: list[str], rows: list[list[str]]) -> str:
    """A caption, then a table of training-step variants: the step's name and seconds per
    step, then `columns` (the ratio to the peer first); each row's cells already formatted."""
    header = ["step", "s/step", *columns]
    lines = [caption, "", "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return "\n".join([*lines, *("| " + " | ".join(cells) + " |" for cells in rows)])


def _step_cells(row: dict, ratio_key: str) -> list[str]:
    """A training-step variant's name, seconds per step and ratio to the peer."""
    return [row["variant"], f"{row['seconds_per_step']:.3f}", f"{row[ratio_key]:.2f}x"]


def train_step() -> str:
    """The training step's settings, each as a ratio to a plain float32 NCHW step."""
    run = json.loads((RESULTS / "train_step.json").read_text())
    caption = (
        f"Batch {run['batch']}, {run['machine']}; {run['gflop_per_step']} GFLOP a plain step and "
        f"{run['quickstart_gflop_per_step']} a quick-start step (its own network); the quick "
        f"start ran at `{run['quickstart_precision']}` (`{run['command']}`):"
    )
    rows = []
    for row in run["rows"]:
        gflops = "–" if row["gflops_per_second"] is None else f"{row['gflops_per_second']:.0f}"
        rows.append([*_step_cells(row, "ratio_to_plain"), gflops])
    return _step_table(caption, ["vs plain", "GFLOP/s"], rows)


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


def sam_tiny_step() -> str:
    """sam_tiny's training step in each layout and precision, as a ratio to float32 NCHW."""
    run = json.loads((RESULTS / "sam_tiny_step.json").read_text())
    caption = (
        f"Batch {run['batch']} of {run['image_size'][0]} x {run['image_size'][1]} scenes, median "
        f"of {run['steps']} steps each ({run['machine']}; `{run['command']}`); drawing a batch "
        f"of scenes adds {run['draw_seconds_per_batch']:.3f} s:"
    )
    rows = [_step_cells(row, "ratio_to_fp32_nchw") for row in run["rows"]]
    return _step_table(caption, ["vs fp32 NCHW"], rows)


#: sam_tiny's recipes side by side: (label, folder of its fit / test / test_foreign files,
#: its prompt-following file, its quick-start test with both segmenters), under results/.
SAM_TINY_RECIPES = (
    ("`configs/sam_tiny.yaml`", "sam_tiny", "prompt_following.json", "quickstart_sam_test.json"),
)


def sam_tiny_recipes() -> str:
    """Each sam_tiny recipe's fit time and the numbers its quality is judged on."""
    lines = [
        "| recipe | steps | fit (min) | two objects: IoU pointed at / other shape / background "
        "/ point just off a shape gives it | quick start: GT point / GT box IoU "
        "| foreign: GT point IoU | CenterPoint IoU | best no-click / GT point |",
        "|---|---|---|---|---|---|---|---|",
    ]
    commands = []
    for label, folder, following, quickstart in SAM_TINY_RECIPES:
        runs = {
            name: json.loads((RESULTS / folder / f"{name}.json").read_text())
            for name in ("fit", "test", "test_foreign")
        }
        pointed = next(
            row
            for row in json.loads((RESULTS / following).read_text())["rows"]
            if row["segmenter"] == "sam_tiny"
        )
        sam_rows = [row for row in _rows(quickstart) if row["segmenter"] == "sam_tiny"]
        center = next(row["iou"] for row in sam_rows if row["strategy"] == "CenterPoint")
        test, foreign = runs["test"]["metrics"], runs["test_foreign"]["metrics"]
        lines.append(
            f"| {label} | {runs['fit']['global_step']} | {runs['fit']['seconds'] / 60:.1f} "
            f"| {_fmt(pointed['iou_pointed'])} / {100 * pointed['other_object']:.1f} % / "
            f"{_fmt(pointed['background_object_iou'])} / {100 * pointed['near_miss_shape']:.1f} % "
            f"| {_fmt(test['test/iou_point'])} / {_fmt(test['test/iou_box'])} "
            f"| {_fmt(foreign['test/iou_point'])} | {_fmt(center)} "
            f"| {_fmt(_best_method(sam_rows)['iou'] / _oracle_iou(sam_rows))} |"
        )
        commands.append(f"`{runs['fit']['command']}`")
    return (
        "\n".join(lines)
        + f"\n\nFits: {'; '.join(commands)} ({runs['fit']['machine']}). Each results file "
        "behind a row (`results/sam_tiny/`, `results/prompt_following.json`, "
        "`results/quickstart_sam_test.json`) holds the command that made it."
    )


def prompt_following() -> str:
    """Per segmenter: does the mask follow the point, on two-object scenes?"""
    run = json.loads((RESULTS / "prompt_following.json").read_text())
    lines = [
        "| segmenter | IoU with the shape pointed at | mask is the other shape "
        "| background point: IoU with a shape | point just off a shape: mask is that shape |",
        "|---|---|---|---|---|",
    ]
    for row in run["rows"]:
        lines.append(
            f"| {row['segmenter']} | {_fmt(row['iou_pointed'])} "
            f"| {100 * row['other_object']:.1f} % | {_fmt(row['background_object_iou'])} "
            f"| {100 * row['near_miss_shape']:.1f} % |"
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


def no_shape() -> str:
    """The no-shape flag on background-only images and on shape images, per checkpoint."""
    runs = [
        json.loads((RESULTS / f"{stem}.json").read_text())
        for stem in ("no_shape_quickstart", "no_shape_foreign3500")
    ]
    lines = [
        "| checkpoint (trained on) | threshold: quantile of val presence scores "
        "| background-only images flagged (foreign generator): val / test "
        "| natural-photo crops flagged | test shape images flagged "
        "| the other generator's test shapes flagged |",
        "|---|---|---|---|---|---|",
    ]
    for run in runs:
        lines.append(
            f"| `{run['checkpoint']}` (`{run['data']}`) | {run['quantile']:.1%} "
            f"| {run['val_background_flagged']:.1%} / {run['background_flagged']:.1%} of "
            f"{run['background_images']} each | {run['natural_background_flagged']:.1%} "
            f"| {run['test_shapes_flagged']:.1%} of {run['test_shape_images']} "
            f"| {run['other_test_shapes_flagged']:.1%} (`{run['other_data']}`) |"
        )
    commands = "; ".join(f"`{run['command']}`" for run in runs)
    return "\n".join(lines) + f"\n\nReproduce: {commands}."


#: The class-map recipes: (file stem, data). Each is the quick start's config (plus
#: configs/multi_object.yaml for the generated folder) on a folder of several classes and objects:
#: its fit time and classifier scores come from its recipe file, its rows from
#: `results/class_maps/<stem>_sam_tiny.json`, the checkpoint's test with GrabCut and sam_tiny
#: side by side (configs/with_sam_tiny.yaml).
CLASS_MAP_CELLS = (
    ("own20000_multi_object", "own generator (`configs/multi_object.yaml`), 6 classes"),
    ("foreign_scenes3500", "foreign generator, 7 other classes, course-size folder"),
)
#: The class-map oracle every no-click row is compared with.
CLASS_MAP_ORACLE = "GroundTruthObjectPoints"


def class_map_recipes() -> str:
    """Per class-map recipe and segmenter: fit time, the classifier's scores, the best no-click
    strategy's mIoU against the ground-truth point oracle's."""
    lines = [
        "| data | first fit | test exact-match acc | macro F1 | segmenter | best no-click "
        "| mIoU | object_hit_rate | stray_point_rate | GT-point oracle mIoU | no-click / oracle |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    cells = [(_load(stem), label, _sam_tiny_run(stem)) for stem, label in CLASS_MAP_CELLS]
    for cell, label, sam in cells:
        every = sam["results"]["rows"]
        for segmenter in dict.fromkeys(row["segmenter"] for row in every):
            rows = [row for row in every if row["segmenter"] == segmenter]
            best = max((r for r in rows if not r["uses_ground_truth"]), key=lambda r: r["miou"])
            oracle = next(r for r in rows if r["strategy"] == CLASS_MAP_ORACLE)
            lines.append(
                f"| {label} | {cell['fit_seconds'] / 60:.1f} min | {_fmt(cell['test_acc'])} "
                f"| {_fmt(cell['class_f1_macro'])} | {segmenter} | {best['strategy']} "
                f"| {_fmt(best['miou'])} | {_fmt(best['object_hit_rate'])} "
                f"| {_fmt(best['stray_point_rate'])} | {_fmt(oracle['miou'])} "
                f"| {_fmt(best['miou'] / oracle['miou'])} |"
            )
    commands = [f"`{cell['fit_command']}`" for cell, _, _ in cells]
    sam_tests = [f"`{sam['command']}`" for _, _, sam in cells]
    return (
        "\n".join(lines)
        + "\n\nFits (each then `test --ckpt_path last`): "
        + "; ".join(commands)
        + ". The sam_tiny rows: "
        + "; ".join(sam_tests)
        + "."
    )


def fresh_head_steps() -> str:
    """Validation F1 of the quick start on a generated folder of other classes, by run length."""
    record = json.loads((RESULTS / "fresh_head_steps_val.json").read_text())
    lines = ["| run | val macro F1 | val exact-match acc |", "|---|---|---|"]
    for run in record["runs"]:
        lines.append(f"| {run['run']} | {_fmt(run['val_f1'])} | {_fmt(run['val_exact_match'])} |")
    commands = "; ".join(f"`{run['command']}`" for run in record["runs"])
    return "\n".join(lines) + f"\n\nRuns ({record['machine']}): {commands}."


def class_map_sweep() -> str:
    """The class-map options compared on the generated multi-object validation split."""
    record = json.loads((RESULTS / "sweep_objects_val.json").read_text())
    table = _row_table(record["results"]["rows"], list(CLASS_MAP_COLUMNS[:3]))  # no background
    return table + f"\n\n`{record['command']}` ({record['images']} images)."


def _sam_tiny_run(stem: str) -> dict:
    """The class-map recipe's checkpoint tested with sam_tiny beside GrabCut."""
    return json.loads((RESULTS / "class_maps" / f"{stem}_sam_tiny.json").read_text())


def class_map_table(stem: str) -> Callable[[], str]:
    """Every (segmenter, strategy) row of a class-map recipe's test with GrabCut and sam_tiny:
    mIoU, object prompts, per-class IoU."""

    def render() -> str:
        cell = _load(stem)
        columns = [*CLASS_MAP_COLUMNS, *(f"iou_{name}" for name in cell["classes"])]
        return _row_table(_sam_tiny_run(stem)["results"]["rows"], columns)

    return render


def mask_choice_table() -> str:
    """Per strategy, the validation IoU of sam_tiny with each `mask_choice` rule."""
    record = json.loads((RESULTS / "sweep_mask_choice_val.json").read_text())
    rows = record["results"]["rows"]
    segmenters = list(dict.fromkeys(row["segmenter"] for row in rows))
    rules = [segmenter["mask_choice"] for segmenter in record["results"]["config"]["segmenters"]]
    iou = {(row["segmenter"], row["strategy"]): row["iou"] for row in rows}
    lines = [
        f"`{record['command']}` ({record['images']} validation images):",
        "",
        "| strategy | " + " | ".join(f"IoU, `{rule}`" for rule in rules) + " |",
        "|---|" + "---|" * len(rules),
    ]
    for strategy in dict.fromkeys(row["strategy"] for row in rows):
        oracle = (
            " (oracle)"
            if any(row["uses_ground_truth"] for row in rows if row["strategy"] == strategy)
            else ""
        )
        cells = [_fmt(iou[(segmenter, strategy)], 4) for segmenter in segmenters]
        lines.append(f"| {strategy}{oracle} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _clicks_run() -> tuple[dict, dict, list[dict]]:
    """The quick start's test with GrabCut and sam_tiny and the full click evaluation."""
    run = json.loads((RESULTS / "quickstart_sam_test.json").read_text())
    return run, run["results"]["clicks"], run["results"]["rows"]


def _clicks(value: float | None) -> str:
    return f">{CLICK_CURVE}" if value is None else f"{value:.2f}"


#: Clicks on the simulated user's mIoU curve (mIoU@1..5).
CLICK_CURVE = 5


def clicks_summary() -> str:
    """Per segmenter: the simulated user's mIoU after 1-5 clicks and NoC@85/90, and what the
    best no-click strategy is worth in clicks."""
    run, clicks, rows = _clicks_run()
    lines = [
        "| segmenter | "
        + " | ".join(f"mIoU@{k}" for k in range(1, CLICK_CURVE + 1))
        + " | NoC@85 | NoC@90 | best no-click strategy | its IoU | worth (clicks) "
        "| NoC@90 from it |",
        "|---|" + "---|" * (CLICK_CURVE + 6),
    ]
    for segmenter, scores in clicks.items():
        best = _best_method([row for row in rows if row["segmenter"] == segmenter])
        curve = " | ".join(_fmt(scores[f"miou_{k}"]) for k in range(1, CLICK_CURVE + 1))
        lines.append(
            f"| {segmenter} | {curve} | {scores['noc85']:.2f} | {scores['noc90']:.2f} "
            f"| {best['strategy']} | {_fmt(best['iou'])} | {_clicks(best['worth_clicks'])} "
            f"| {_clicks(best.get('noc90_from_start'))} |"
        )
    return (
        f"`{run['command']}`: {run['results']['num_images']} test images in "
        f"{run['seconds'] / 60:.1f} min ({run['machine']}; `results/quickstart_sam_test.json`)."
        "\n\n" + "\n".join(lines)
    )


def clicks_per_strategy() -> str:
    """Per strategy and segmenter: its IoU, what it is worth in clicks and the clicks it still
    needs to reach an IoU of 0.90."""
    _, clicks, rows = _clicks_run()
    segmenters = list(clicks)
    lines = [
        "| strategy | "
        + " | ".join(f"{s}: IoU / worth / NoC@90 from it" for s in segmenters)
        + " |",
        "|---|" + "---|" * len(segmenters),
    ]
    for strategy in dict.fromkeys(row["strategy"] for row in rows):
        cells, oracle = [], ""
        for segmenter in segmenters:
            row = next(r for r in rows if r["segmenter"] == segmenter and r["strategy"] == strategy)
            start = row.get("noc90_from_start")
            cells.append(
                f"{_fmt(row['iou'])} / {_clicks(row['worth_clicks'])} / "
                + ("–" if row["uses_ground_truth"] else _clicks(start))
            )
            oracle = " (oracle)" if row["uses_ground_truth"] else ""
        lines.append(f"| {strategy}{oracle} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


#: Generated README blocks: marker name -> renderer.
BLOCKS: dict[str, Callable[[], str]] = {
    "recipe-table": recipe_table,
    "recipe-commands": recipe_commands,
    "quickstart-test": pipeline_table("recipes/own20000_shapes.json"),
    "foreign-test": pipeline_table("recipes/foreign3500_shapes.json"),
    "sweep-val": pipeline_table("sweep_val.json"),
    "grabcut-ceiling": grabcut_ceiling,
    "shapes-weights": shapes_weights,
    "first-runs": first_runs,
    "train-step": train_step,
    "stem-cost": stem_cost,
    "sam-tiny-training": sam_tiny_training,
    "sam-tiny-step": sam_tiny_step,
    "prompt-following": prompt_following,
    "sam-tiny-recipes": sam_tiny_recipes,
    "quickstart-sam-summary": sam_summary,
    "quickstart-sam-test": pipeline_table("quickstart_sam_test.json"),
    "sweep-val-sam": pipeline_table("sweep_val_sam.json"),
    "sam-batched-decode": sam_batched_decode,
    "no-shape": no_shape,
    "class-map-recipes": class_map_recipes,
    "fresh-head-steps": fresh_head_steps,
    "class-map-sweep-val": class_map_sweep,
    "class-map-test": class_map_table("own20000_multi_object"),
    "class-map-foreign-test": class_map_table("foreign_scenes3500"),
    "mask-choice-val": mask_choice_table,
    "clicks-summary": clicks_summary,
    "clicks-per-strategy": clicks_per_strategy,
}


def _pattern(name: str) -> re.Pattern[str]:
    return re.compile(
        rf"(<!-- BEGIN {re.escape(name)} -->\n)(?:.*?\n)?(<!-- END {re.escape(name)} -->)", re.S
    )


def render(page: str) -> str:
    """`page` with each generated block it holds replaced by a fresh rendering."""
    for name, renderer in BLOCKS.items():
        page = _pattern(name).sub(lambda m, r=renderer: m.group(1) + r() + "\n" + m.group(2), page)
    return page


def render_pages(pages: dict[str, str]) -> dict[str, str]:
    """Every page (name -> text) rendered; each block must sit in exactly one page."""
    for name in BLOCKS:
        holders = [page for page, text in pages.items() if _pattern(name).search(text)]
        if len(holders) != 1:
            where = ", ".join(holders) or "no page"
            raise ValueError(f"<!-- BEGIN {name} --> ... <!-- END {name} --> is in {where}")
    return {page: render(text) for page, text in pages.items()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="only compare; exit 1 on change")
    args = parser.parse_args(argv)
    current = {str(path.relative_to(ROOT)): path.read_text() for path in PAGES}
    fresh = render_pages(current)
    stale = [page for page in current if fresh[page] != current[page]]
    if args.check:
        for page in stale:
            print(f"{page} is out of date: run `python scripts/render_results.py`")
        return 1 if stale else 0
    for page in stale:
        (ROOT / page).write_text(fresh[page])
    return 0


if __name__ == "__main__":
    sys.exit(main())
