"""Where the per-object prompts miss, and what GrabCut's seed and rim re-cut do to no-click and
oracle.

For a fitted checkpoint and a validation split of class-index masks, runs the method's class maps
(`run_class_maps`, the callback's path) with GrabCut at each `--point-radius` (the radius of its
definite-foreground seed disc there, `object_point_radius`) and each `--rim-depth` (the depth of
its re-cut from the mask's rim there, `object_rim_depth`; 0: none), the no-click
`CamConsensusPerObject` and the oracle `GroundTruthObjectPoints`, and reports per (radius, depth,
strategy) the callback's numbers (mIoU, each class's IoU, object hit and stray point rates) and
every ground-truth object (8-connected component of one class, as `ObjectHitRate` counts them, so
the hits here are its numerator) by its outcome:

- hit: a prompt of its class lies inside it;
- near: its class got prompts, the nearest within `NEAR_PIXELS` of it (a concavity, a rim);
- far: its class got prompts, all farther away (a hole, another object);
- no prompt: its class was found, but no prompt was placed for it;
- class not found: the classifier did not find its class (oracles: never, they are given it).

Validation splits only: it guides choices, the test split is for reporting.

    python benchmarks/object_misses.py --data-root data/multi_object \\
        --checkpoint checkpoints/recipes/own20000_multi_object/last.ckpt --point-radius 3 2 \\
        --rim-depth 0 3.5 --output results/object_misses/own20000_multi_object_val.json
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
from collections import Counter
from pathlib import Path

import cv2
import numpy as np
import torch
from machine import describe_machine
from multi_label_run import load_multi_label_run
from PIL import Image
from tqdm import tqdm

from lit_gradcam.class_map_drawing import class_map_grid
from lit_gradcam.classifier.model import ShapeClassifier
from lit_gradcam.data.datamodule import ShapesDataModule
from lit_gradcam.evaluation.class_map_scoring import ClassMapScoring
from lit_gradcam.method.objects import (
    ClassMapOutput,
    ClassMapResult,
    classes_present,
    run_class_maps,
)
from lit_gradcam.method.pipeline import (
    CLASS_MAP_CAM,
    DEFAULT_OBJECT_PREDICT_STRATEGY,
    default_object_strategies,
)
from lit_gradcam.prompt_types import Prompts
from lit_gradcam.prompts.geometry import round_to_pixel
from lit_gradcam.segmenters.grabcut import GrabCutSegmenter

#: The no-click strategy and the oracle compared, by their default names.
STRATEGIES = (DEFAULT_OBJECT_PREDICT_STRATEGY, "GroundTruthObjectPoints")
#: A miss whose nearest prompt of the class is this close (px) to the object is "near".
NEAR_PIXELS = 2.0
OUTCOMES = ("hit", "near", "far", "no prompt", "class not found")


def object_outcomes(
    gt_map: np.ndarray, points: np.ndarray, point_classes: np.ndarray, found: np.ndarray
) -> list[tuple[int, str]]:
    """(class value, outcome) of each ground-truth object of one image.

    gt_map (H, W) class values (0 background, 255 ignored); points (K, 2) (x, y) with their
    class values (K,) (0: padding); found (C,) bool, the classes the prompts were placed for.
    A point sits on the pixel at its rounded coordinates, as the metrics read it.
    """
    height, width = gt_map.shape
    pixels = torch.stack(round_to_pixel(torch.from_numpy(points), height, width), 1).numpy()
    outcomes = []
    for value in range(1, len(found) + 1):
        count, labels = cv2.connectedComponents((gt_map == value).astype(np.uint8), connectivity=8)
        mine = pixels[point_classes == value]
        for component in range(1, count):
            inside = labels == component
            if not found[value - 1]:
                outcome = "class not found"
            elif len(mine) == 0:
                outcome = "no prompt"
            elif inside[mine[:, 1], mine[:, 0]].any():
                outcome = "hit"
            else:
                ys, xs = np.nonzero(inside)
                gaps = np.hypot(xs[None] - mine[:, :1], ys[None] - mine[:, 1:]).min()
                outcome = "near" if gaps <= NEAR_PIXELS else "far"
            outcomes.append((value, outcome))
    return outcomes


def measure(
    model: ShapeClassifier,
    data: ShapesDataModule,
    radius: int,
    rim_depth: float,
    limit: int | None,
    figure_images: int = 0,
) -> tuple[list[dict], ClassMapOutput | None]:
    """One row per strategy of `STRATEGIES` with GrabCut at `radius` and `rim_depth`, and the
    first `figure_images` images where the no-click strategy missed an object (its results
    only)."""
    classes = model.class_names
    strategies = [s for s in default_object_strategies() if s.name in STRATEGIES]
    segmenter = GrabCutSegmenter(object_point_radius=radius, object_rim_depth=rim_depth)
    keys = [f"{segmenter.name}/{s.name}" for s in strategies]
    scoring = ClassMapScoring(keys, classes, multi_label=True)
    tallies = {key: Counter() for key in keys}
    missed: list[ClassMapOutput] = []
    seen = 0
    for images, labels, gt_maps in tqdm(
        data.val_dataloader(), desc=f"point_radius {radius}, rim_depth {rim_depth}"
    ):
        keep = len(images) if limit is None else min(len(images), limit - seen)
        if keep <= 0:
            break
        images, labels, gt_maps = images[:keep], labels[:keep], gt_maps[:keep]
        seen += keep
        output = run_class_maps(
            [segmenter], strategies, CLASS_MAP_CAM, model.model, images, model.classify, gt_maps
        )
        scoring.update(output, labels, gt_maps)
        given = classes_present(gt_maps, len(classes))  # oracles get every class
        for key, strategy in zip(keys, strategies, strict=True):
            result = output.results[key]
            found = given if strategy.uses_ground_truth else output.found
            for index in range(len(images)):
                outcomes = object_outcomes(
                    gt_maps[index].numpy(),
                    result.prompts.points[index].numpy(),
                    result.point_classes[index].numpy(),
                    found[index].numpy(),
                )
                for value, outcome in outcomes:
                    tallies[key][(classes[value - 1], outcome)] += 1
                missing = any(outcome != "hit" for _, outcome in outcomes)
                if not strategy.uses_ground_truth and missing and len(missed) < figure_images:
                    missed.append(_one_image(output, key, index))
    uses_gt = {s.name: s.uses_ground_truth for s in strategies}
    rows, _, _ = scoring.results("val", uses_gt)
    for row, key in zip(rows, keys, strict=True):
        row["point_radius"], row["rim_depth"] = radius, rim_depth
        row["objects"] = {name: {o: tallies[key][(name, o)] for o in OUTCOMES} for name in classes}
    return rows, ClassMapOutput.cat(missed) if missed else None


def _one_image(output: ClassMapOutput, key: str, index: int) -> ClassMapOutput:
    """Image `index` of a batch's output, with only `key`'s result."""
    keep = slice(index, index + 1)
    result = output.results[key]
    prompts = Prompts(result.prompts.points[keep], result.prompts.labels[keep])
    return ClassMapOutput(
        output.images_uint8[keep],
        output.logits[keep],
        output.found[keep],
        output.heatmaps[keep],
        {key: ClassMapResult(result.class_maps[keep], prompts, result.point_classes[keep])},
        output.gt_maps[keep],
    )


def save_figure(missed: ClassMapOutput, classes: tuple[str, ...], path: Path) -> None:
    """The missed images as the TensorBoard class-map grid: input | CAM and prompts | predicted
    class map | ground truth, with the legend."""
    (result,) = missed.results.values()
    grid = class_map_grid(
        missed.images_uint8, missed.heatmaps, result.prompts, result.class_maps, missed.gt_maps,
        classes,
    )  # fmt: skip
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(grid.permute(1, 2, 0).numpy()).save(path, format="PNG")


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-root", required=True, help="a folder with classes.txt")
    parser.add_argument("--checkpoint", required=True, help="the classifier fitted on it")
    parser.add_argument(
        "--point-radius",
        type=int,
        nargs="+",
        default=[GrabCutSegmenter().object_point_radius],
        help="GrabCut's object_point_radius",
    )
    parser.add_argument(
        "--rim-depth",
        type=float,
        nargs="+",
        default=[GrabCutSegmenter().object_rim_depth],
        help="GrabCut's object_rim_depth (0: no re-cut)",
    )
    parser.add_argument("--limit", type=int, help="score the first LIMIT validation images")
    parser.add_argument("--output", type=Path, required=True, help="JSON file to write")
    parser.add_argument(
        "--figure", type=Path, help="PNG of images with a missed object, at the first setting"
    )
    parser.add_argument("--figure-images", type=int, default=6, help="how many, in split order")
    parser.add_argument("--checkpoint-command", help="how the checkpoint was made, for the file")
    args = parser.parse_args(argv)
    model, data = load_multi_label_run(args.checkpoint, args.data_root)
    rows = []
    settings = [(r, d) for r in args.point_radius for d in args.rim_depth]
    for order, (radius, depth) in enumerate(settings):
        wanted = args.figure_images if args.figure is not None and order == 0 else 0
        setting_rows, missed = measure(model, data, radius, depth, args.limit, wanted)
        rows += setting_rows
        if missed is not None:
            save_figure(missed, model.class_names, args.figure)
    document = {
        "description": "\n\n".join(__doc__.split("\n\n")[:2]),
        "command": shlex.join(
            ["python", "benchmarks/object_misses.py", *(sys.argv[1:] if argv is None else argv)]
        ),
        "machine": describe_machine(),
        "data_root": args.data_root,
        "checkpoint": args.checkpoint,
        "checkpoint_command": args.checkpoint_command,
        "split": "val",
        "rows": rows,
    }
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(document, indent=2) + "\n")
    for row in rows:
        setting = f"point_radius {row['point_radius']}, rim_depth {row['rim_depth']}"
        print(f"{setting} {row['strategy']}: mIoU {row['miou']:.3f}")
    return document


if __name__ == "__main__":
    main()
