"""GrabCut's ceiling: mean IoU with one oracle point at each ground-truth mask's centre of mass.

No prompt strategy can feed GrabCut a better single point, so this is the most any strategy can
reach with this segmenter. Reported overall and broken down by class, opacity (opaque: the
shape's inner pixels, those whose 4-neighbours are all in the mask, share one colour), mask area,
and how textured the background is (mean RGB step between neighbouring pixels away from the
shape). The last column is the share of wrongly labelled pixels that lie on the ground truth's
edge (a pixel with a 4-neighbour across its boundary): near 1 means the cut is in the right
place but its boundary pixels go the wrong way.

    python benchmarks/grabcut_ceiling.py --root data/shapes --split val
    python benchmarks/grabcut_ceiling.py --root data/foreign --edge-radius 0 \\
        --output results/grabcut_foreign.json --label "foreign val, before"

A missing ROOT is generated first by the training generator (seed 0, default split sizes).
`--output` adds (or replaces) this run, under `--label`, in a JSON file with the command lines
that made the data and the numbers.
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor
from torch.utils.data import DataLoader

from lit_gradcam.data import CLASSES, ShapesFolder, generate_dataset
from lit_gradcam.imaging import denormalize_to_uint8
from lit_gradcam.prompts.base import foreground_points
from lit_gradcam.prompts.geometry import snap_to_mask, weighted_centroid
from lit_gradcam.segmenters.grabcut import GrabCutSegmenter

#: Mask areas (px) that split small / medium / large shapes.
AREA_BINS = (100, 200)
#: Background texture (mean RGB step between neighbours) that splits calm / textured / busy.
TEXTURE_BINS = (4.0, 12.0)
#: Share of a shape's inner pixels that must have its most common colour to call it opaque.
OPAQUE_SHARE = 0.9


def edge_pixels(masks: Tensor) -> Tensor:
    """(B, H, W) True at pixels with a 4-neighbour on the other side of the mask's boundary."""
    edge = torch.zeros_like(masks)
    rows = masks[:, 1:] != masks[:, :-1]
    cols = masks[:, :, 1:] != masks[:, :, :-1]
    edge[:, 1:] |= rows
    edge[:, :-1] |= rows
    edge[:, :, 1:] |= cols
    edge[:, :, :-1] |= cols
    return edge


def is_opaque(images: Tensor, masks: Tensor) -> Tensor:
    """(B,) True where most inner mask pixels share one colour (uint8 images (B, 3, H, W)); the
    edge is left out, since an anti-aliased edge mixes the shape's colour with the background's."""
    inner = masks & ~edge_pixels(masks)
    inner = torch.where(inner.flatten(1).any(1)[:, None, None], inner, masks)
    codes = images.long()
    codes = (codes[:, 0] << 16) | (codes[:, 1] << 8) | codes[:, 2]
    result = []
    for code, keep in zip(codes, inner, strict=True):
        values = code[keep]
        _, counts = values.unique(return_counts=True)
        result.append(bool(counts.numel()) and counts.max().item() >= OPAQUE_SHARE * values.numel())
    return torch.tensor(result)


def texture(images: Tensor, masks: Tensor) -> Tensor:
    """(B,) mean RGB distance between 4-neighbour pixels more than two pixels from the mask."""
    pixels = images.float()
    far = F.max_pool2d(masks[:, None].float(), 5, 1, 2)[:, 0] == 0
    total, count = torch.zeros(len(images)), torch.zeros(len(images))
    for dim in (2, 3):
        length = pixels.shape[dim] - 1
        step = (pixels.narrow(dim, 1, length) - pixels.narrow(dim, 0, length)).norm(dim=1)
        both = far.narrow(dim - 1, 1, length) & far.narrow(dim - 1, 0, length)
        total += (step * both).flatten(1).sum(1)
        count += both.flatten(1).sum(1)
    return total / count.clamp_min(1)


def iou(pred: Tensor, target: Tensor) -> Tensor:
    """(B,) intersection over union of bool masks (B, H, W); 1 where both are empty."""
    inter = (pred & target).flatten(1).sum(1)
    union = (pred | target).flatten(1).sum(1)
    return torch.where(union > 0, inter / union.clamp_min(1), torch.ones_like(inter.float()))


def measure(
    dataset: ShapesFolder, segmenter: GrabCutSegmenter, batch_size: int = 64
) -> dict[str, Tensor]:
    """Per-image IoU, wrong pixels (all, and on the ground truth's edge) and what to group by,
    with one point at each mask's centre of mass, snapped to the nearest mask pixel when it
    falls outside (as the GroundTruthCentroid strategy places it)."""
    columns: dict[str, list[Tensor]] = {}
    for images, label, masks in DataLoader(dataset, batch_size=batch_size):
        uint8 = denormalize_to_uint8(images)
        prompts = foreground_points(snap_to_mask(weighted_centroid(masks.float()), masks))
        pred, _ = segmenter.predict(segmenter.embed(uint8), prompts)
        wrong = pred ^ masks
        batch = {
            "iou": iou(pred, masks),
            "errors": wrong.flatten(1).sum(1),
            "edge_errors": (wrong & edge_pixels(masks)).flatten(1).sum(1),
            "label": label,
            "opaque": is_opaque(uint8, masks),
            "area": masks.flatten(1).sum(1),
            "texture": texture(uint8, masks),
        }
        for key, value in batch.items():
            columns.setdefault(key, []).append(value)
    return {key: torch.cat(values) for key, values in columns.items()}


def _bins(values: Tensor, edges: tuple[float, float], names: tuple[str, str, str], unit: str):
    low, high = edges
    return {
        f"{names[0]} (<{low:g}{unit})": values < low,
        f"{names[1]} ({low:g}-{high:g}{unit})": (values >= low) & (values < high),
        f"{names[2]} (>={high:g}{unit})": values >= high,
    }


def breakdown(results: dict[str, Tensor]) -> dict[str, dict[str, float]]:
    """Per group: image count, mean and min IoU, and the share of wrong pixels on the edge."""
    groups = {"overall": torch.ones_like(results["opaque"])}
    groups.update({name: results["label"] == index for index, name in enumerate(CLASSES)})
    groups.update({"opaque": results["opaque"], "translucent": ~results["opaque"]})
    groups.update(_bins(results["area"], AREA_BINS, ("small", "medium", "large"), " px"))
    backgrounds = ("calm bg", "textured bg", "busy bg")
    groups.update(_bins(results["texture"], TEXTURE_BINS, backgrounds, ""))
    table = {}
    for name, keep in groups.items():
        values = results["iou"][keep]
        if values.numel():
            errors = results["errors"][keep].sum().item()
            on_edge = results["edge_errors"][keep].sum().item()
            table[name] = {
                "n": values.numel(),
                "mean_iou": round(values.mean().item(), 4),
                "min_iou": round(values.min().item(), 4),
                "edge_error_share": round(on_edge / max(errors, 1), 3),
            }
    return table


def report(table: dict[str, dict[str, float]]) -> str:
    """The breakdown as a text table."""
    lines = [f"{'group':<28} {'n':>5} {'mean IoU':>9} {'min IoU':>8} {'edge errors':>12}"]
    for name, row in table.items():
        lines.append(
            f"{name:<28} {row['n']:>5} {row['mean_iou']:>9.4f} {row['min_iou']:>8.4f} "
            f"{row['edge_error_share']:>12.3f}"
        )
    return "\n".join(lines)


def dataset_command(root: Path) -> str | None:
    """The command line that generates `root`, read from the recipe its generator wrote."""
    foreign, own = root / "foreign.json", root / "dataset.json"
    if foreign.is_file():
        recipe, generator, extra = json.loads(foreign.read_text()), ["benchmarks/foreign.py"], []
    elif own.is_file():
        recipe, generator = json.loads(own.read_text()), ["-m", "lit_gradcam.data.generate"]
        extra = ["--background", recipe["background"]]
    else:
        return None
    sizes = [arg for split, n in recipe["split_sizes"].items() for arg in (f"--{split}", str(n))]
    args = ["--root", str(root), "--seed", str(recipe["seed"]), *sizes, *extra]
    return shlex.join(["python", *generator, *args])


def save(path: Path, label: str, run: dict) -> None:
    """Add `run` to the JSON file at `path` under `label`, replacing a run of that label."""
    about = "\n\n".join(__doc__.split("\n\n")[:2])
    document = json.loads(path.read_text()) if path.is_file() else {"description": about}
    document.setdefault("runs", {})[label] = run
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(document, indent=2) + "\n")


def main(argv: list[str] | None = None) -> dict[str, dict[str, float]]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--root", type=Path, default=Path("data/shapes"))
    parser.add_argument("--split", default="val")
    parser.add_argument("--iterations", type=int, default=5)
    parser.add_argument("--point-radius", type=int, default=3)
    parser.add_argument("--prior-radius", type=int, default=7)
    parser.add_argument("--edge-radius", type=int, default=2, help="0: GrabCut's own edges")
    parser.add_argument("--output", type=Path, help="JSON file to add this run to")
    parser.add_argument("--label", default="run", help="name of this run in --output")
    args = parser.parse_args(argv)
    if not args.root.exists():
        generate_dataset(args.root)
    params = {
        "iterations": args.iterations,
        "point_radius": args.point_radius,
        "prior_radius": args.prior_radius,
        "edge_radius": args.edge_radius,
    }
    table = breakdown(measure(ShapesFolder(args.root, args.split), GrabCutSegmenter(**params)))
    print(f"GrabCut ceiling on {args.root}/{args.split}: {params}")
    print(report(table))
    if args.output is not None:
        argv = sys.argv[1:] if argv is None else argv
        run = {
            "command": shlex.join(["python", "benchmarks/grabcut_ceiling.py", *argv]),
            "data_command": dataset_command(args.root),
            "split": args.split,
            "segmenter": params,
            "groups": table,
        }
        save(args.output, args.label, run)
    return table


if __name__ == "__main__":
    main()
