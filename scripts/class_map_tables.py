"""The class-map blocks: the multi-class recipes, their tests with GrabCut and sam_tiny, the
class-map option sweep and the classifier's validation runs (run length, decision views)."""

from __future__ import annotations

import re
from collections.abc import Callable

import yaml
from result_tables import ROOT, fmt, load_recipe, load_result, row_table

from lit_gradcam.classifier.schedule import fresh_head_length
from lit_gradcam.evaluation.class_map_scoring import CLASS_MAP_COLUMNS
from lit_gradcam.method.pipeline import DEFAULT_OBJECT_PREDICT_STRATEGY

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


def _sam_tiny_run(stem: str) -> dict:
    """The class-map recipe's checkpoint tested with sam_tiny beside GrabCut."""
    return load_result(f"class_maps/{stem}_sam_tiny.json")


def class_map_recipes() -> str:
    """Per class-map recipe and segmenter: fit time, the classifier's scores, the best no-click
    strategy's mIoU against the ground-truth point oracle's."""
    lines = [
        "| data | first fit | test exact-match acc | macro F1 | segmenter | best no-click "
        "| mIoU | object_hit_rate | stray_point_rate | GT-point oracle mIoU | no-click / oracle |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    cells = [(load_recipe(stem), label, _sam_tiny_run(stem)) for stem, label in CLASS_MAP_CELLS]
    for cell, label, sam in cells:
        every = sam["results"]["rows"]
        for segmenter in dict.fromkeys(row["segmenter"] for row in every):
            rows = [row for row in every if row["segmenter"] == segmenter]
            best = max((r for r in rows if not r["uses_ground_truth"]), key=lambda r: r["miou"])
            oracle = next(r for r in rows if r["strategy"] == CLASS_MAP_ORACLE)
            lines.append(
                f"| {label} | {cell['fit_seconds'] / 60:.1f} min | {fmt(cell['test_acc'])} "
                f"| {fmt(cell['class_f1_macro'])} | {segmenter} | {best['strategy']} "
                f"| {fmt(best['miou'])} | {fmt(best['object_hit_rate'])} "
                f"| {fmt(best['stray_point_rate'])} | {fmt(oracle['miou'])} "
                f"| {fmt(best['miou'] / oracle['miou'])} |"
            )
    commands = [f"`{cell['fit_command']}` ({cell['machine']})" for cell, _, _ in cells]
    sam_tests = [f"`{sam['command']}` ({sam['machine']})" for _, _, sam in cells]
    return (
        "\n".join(lines)
        + "\n\nFits (each then `test --ckpt_path last`): "
        + "; ".join(commands)
        + ". The sam_tiny rows: "
        + "; ".join(sam_tests)
        + "."
    )


def quick_start_fresh_run() -> tuple[int, float]:
    """(steps, peak learning rate) of the quick start's fit on a folder of other classes, read
    from configs/quickstart.yaml: its head is new, so it trains `model.fresh_head_steps` times
    `trainer.max_steps` at `model.fresh_head_lr` times `model.lr`."""
    config = yaml.safe_load((ROOT / "configs/quickstart.yaml").read_text())
    model = config["model"]
    steps = fresh_head_length(config["trainer"]["max_steps"], model["fresh_head_steps"])
    return steps, round(float(model["lr"]) * model["fresh_head_lr"], 8)


def fresh_head_steps() -> str:
    """Validation F1 of the quick start on generated folders of other classes, by folder, run
    length and learning rate; the runs the quick start's config makes in bold."""
    record = load_result("fresh_head_steps_val.json")
    chosen = quick_start_fresh_run()
    lines = [
        "| folder | steps | peak lr | val macro F1 | val exact-match acc | threshold |",
        "|---|---|---|---|---|---|",
    ]
    for row in record["rows"]:
        is_quick_start = (row["steps"], row["lr"]) == chosen
        steps = f"**{row['steps']}** (the quick start)" if is_quick_start else str(row["steps"])
        lines.append(
            f"| `{row['folder']}` | {steps} | {row['lr']:g} | {fmt(row['f1'])} "
            f"| {fmt(row['exact_match'])} | {row['threshold']:.2f} |"
        )
    commands = "; ".join(f"`{row['command']}`" for row in record["rows"])
    return (
        "\n".join(lines)
        + f"\n\nReproduce: `{record['command']}` ({record['machine']}), which scores the "
        + f"checkpoints of: {commands}."
    )


def decision_views() -> str:
    """Validation F1 and exact match of one checkpoint's classifier per set of views it reads
    (scales, mirroring), each at its own validation-chosen threshold; the chosen set in bold."""
    record = load_result("decision_views_val.json")
    lines = [
        "| views the classifier reads | val macro F1 | val exact-match acc | threshold |",
        "|---|---|---|---|",
    ]
    for row in record["rows"]:
        views = f"**{row['views']}** (chosen)" if row["chosen"] else row["views"]
        lines.append(
            f"| {views} | {fmt(row['f1'])} | {fmt(row['exact_match'])} | {row['threshold']:.2f} |"
        )
    reproduce = f"Reproduce: `{record['command']}`"
    if record["checkpoint_command"]:
        reproduce += f" on the checkpoint of `{record['checkpoint_command']}`"
    return "\n".join(lines) + "\n\n" + reproduce + "."


def class_map_sweep() -> str:
    """The class-map options compared on the generated multi-object validation split."""
    record = load_result("sweep_objects_val.json")
    table = row_table(record["results"]["rows"], list(CLASS_MAP_COLUMNS[:3]))  # no background
    return table + f"\n\n`{record['command']}` ({record['images']} images)."


#: The validation folders that the class-map sweeps (`configs/sweep_class_map_cam.yaml`,
#: `configs/sweep_object_split.yaml`) score, by file stem under each sweep's results folder, with
#: the folder each scored.
SWEEP_RUNS = (
    ("own20000_multi_object_val", "own generator"),
    ("foreign_scenes3500_val", "foreign generator"),
    ("foreign_scenes_seed7_val", "foreign generator, seed 7 (a check only)"),
)


def validation_sweep(folder: str) -> Callable[[], str]:
    """The class-map sweep under `results/{folder}/`: each no-click row per validation folder
    (`SWEEP_RUNS`), with the folder's GT-point oracle and the ratio to it."""

    def render() -> str:
        columns = [*CLASS_MAP_COLUMNS, "GT-point oracle mIoU", "mIoU / oracle"]
        lines = [
            "| folder | strategy | " + " | ".join(columns) + " |",
            "|---|---|" + "---|" * len(columns),
        ]
        commands = []
        for stem, label in SWEEP_RUNS:
            record = load_result(f"{folder}/{stem}.json")
            rows = record["results"]["rows"]
            oracle = next(r for r in rows if r["strategy"] == CLASS_MAP_ORACLE)["miou"]
            for row in rows:
                if row["uses_ground_truth"]:
                    continue
                values = [fmt(row[c]) for c in CLASS_MAP_COLUMNS]
                values += [fmt(oracle), fmt(row["miou"] / oracle)]
                lines.append(f"| {label} | {row['strategy']} | " + " | ".join(values) + " |")
            commands.append(
                f"`{record['command']}` ({record['machine']}, {record['images']} images)"
            )
        return "\n".join(lines) + "\n\nReproduce: " + "; ".join(commands) + "."

    return render


def class_map_table(stem: str) -> Callable[[], str]:
    """Every (segmenter, strategy) row of a class-map recipe's test with GrabCut and sam_tiny:
    mIoU, object prompts, per-class IoU."""

    def render() -> str:
        cell = load_recipe(stem)
        columns = [*CLASS_MAP_COLUMNS, *(f"iou_{name}" for name in cell["classes"])]
        return row_table(_sam_tiny_run(stem)["results"]["rows"], columns)

    return render


#: The `benchmarks/object_misses.py` runs in the docs, by file stem: the class-map recipes'
#: checkpoints on their folders, a classifier fitted on the own generator with rings among its
#: classes, and the foreign recipe's checkpoint on a fresh foreign folder (seed 7); each at
#: GrabCut's seed radii without the rim re-cut, and at the chosen radius with and without it.
OBJECT_MISSES_RUNS = (
    "own20000_multi_object_val",
    "own_ring_val",
    "foreign_scenes3500_val",
    "foreign_scenes_seed7_val",
)
RIM_DEPTH_RUNS = tuple(f"{stem}_rim_depth" for stem in OBJECT_MISSES_RUNS)
#: The quick start's classifier validated with GrabCut at each seed radius (single objects).
POINT_RADIUS_RUNS = ("point_radius/quickstart_val_r3.json", "point_radius/quickstart_val_r1.json")


def object_misses() -> str:
    """The seed radius runs (`OBJECT_MISSES_RUNS`) as `object_miss_table` renders them."""
    return object_miss_table(OBJECT_MISSES_RUNS)


def object_misses_rim_depth() -> str:
    """The rim re-cut runs (`RIM_DEPTH_RUNS`) as `object_miss_table` renders them."""
    return object_miss_table(RIM_DEPTH_RUNS)


def object_miss_table(stems: tuple[str, ...]) -> str:
    """Per validation split and GrabCut setting (seed radius, rim re-cut depth), no-click and
    oracle mIoU, their ratio, and where the no-click prompts left the ground-truth objects (the
    outcomes the files name)."""
    records = [load_result(f"object_misses/{stem}.json") for stem in stems]
    outcomes = list(next(iter(records[0]["rows"][0]["objects"].values())))
    lines = [
        "| validation split | point_radius | rim_depth | no-click mIoU | oracle mIoU | ratio | "
        + " | ".join(f"objects: {o}" for o in outcomes)
        + " |",
        "|---" * (6 + len(outcomes)) + "|",
    ]
    commands = []
    for record in records:  # a command names its checkpoint's own command where it has one
        commands.append(f"`{record['command']}` ({record['machine']})")
        rows = {(r["point_radius"], r["rim_depth"], r["strategy"]): r for r in record["rows"]}
        settings = dict.fromkeys((r["point_radius"], r["rim_depth"]) for r in record["rows"])
        for radius, depth in settings:
            method = rows[(radius, depth, DEFAULT_OBJECT_PREDICT_STRATEGY)]
            oracle = rows[(radius, depth, CLASS_MAP_ORACLE)]
            counts = [sum(c[o] for c in method["objects"].values()) for o in outcomes]
            cells = [f"`{record['data_root']}`", str(radius), f"{depth:g}", fmt(method["miou"])]
            cells += [fmt(oracle["miou"]), fmt(method["miou"] / oracle["miou"])]
            lines.append("| " + " | ".join(cells + [str(c) for c in counts]) + " |")
    return "\n".join(lines) + "\n\nReproduce: " + "; ".join(commands) + "."


def grabcut_point_radius_no_click() -> str:
    """Every default strategy's IoU on single-object validation at each GrabCut seed radius."""
    runs = [load_result(relative) for relative in POINT_RADIUS_RUNS]
    radii = [_point_radius(run["command"]) for run in runs]
    lines = [
        "| strategy | " + " | ".join(f"iou, point_radius {r}" for r in radii) + " |",
        "|---" * (1 + len(runs)) + "|",
    ]
    by_strategy = [{row["strategy"]: row for row in run["results"]["rows"]} for run in runs]
    for name, row in by_strategy[0].items():
        label = f"{name} (oracle)" if row["uses_ground_truth"] else name
        ious = " | ".join(fmt(rows[name]["iou"]) for rows in by_strategy)
        lines.append(f"| {label} | {ious} |")
    commands = "; ".join(f"`{run['command']}` ({run['machine']})" for run in runs)
    return "\n".join(lines) + f"\n\nReproduce: {commands}."


def _point_radius(command: str) -> int:
    """The GrabCut seed radius a run's command sets (its results name the segmenter only)."""
    found = re.search(r"point_radius: (\d+)", command)
    if found is None:
        raise ValueError(f"the command sets no point_radius: {command}")
    return int(found.group(1))


def grabcut_point_radius() -> str:
    """GrabCut's single-object oracle (one point at the ground-truth centroid) per seed radius."""
    runs = load_result("grabcut_point_radius.json")["runs"]
    lines = ["| validation split, seed radius | mean IoU | min IoU |", "|---|---|---|"]
    for label, run in runs.items():
        overall = run["groups"]["overall"]
        lines.append(f"| {label} | {fmt(overall['mean_iou'])} | {fmt(overall['min_iou'])} |")
    commands = "; ".join(f"`{run['command']}`" for run in runs.values())
    data = "; ".join(f"`{c}`" for c in dict.fromkeys(run["data_command"] for run in runs.values()))
    return "\n".join(lines) + f"\n\nReproduce: {commands}; on folders made by {data}."
