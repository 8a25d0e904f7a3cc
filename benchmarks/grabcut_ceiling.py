"""GrabCut's ceiling: mean IoU with one oracle point at each ground-truth mask's centre of mass.

No prompt strategy can feed GrabCut a better single point, so this is the most any strategy can
reach with this segmenter. Reported overall, per class and for opaque vs translucent shapes
(opaque: every pixel inside the mask has the same colour, as a flat shape drawn at alpha 1 does;
a translucent shape lets the background through).

    python benchmarks/grabcut_ceiling.py --root data/shapes --split test
    python benchmarks/grabcut_ceiling.py --root data/shapes --split val --prior-radius 6

A missing ROOT is generated first (seed 0, default split sizes).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch
from torch import Tensor
from torch.utils.data import DataLoader

from lit_gradcam.data import CLASSES, ShapesFolder, generate_dataset
from lit_gradcam.prompts.base import foreground_points
from lit_gradcam.prompts.geometry import snap_to_mask, weighted_centroid
from lit_gradcam.segmenters.base import denormalize_to_uint8
from lit_gradcam.segmenters.grabcut import GrabCutSegmenter


def is_opaque(images: Tensor, masks: Tensor) -> Tensor:
    """(B,) True where all pixels inside the mask share one colour (uint8 images (B, 3, H, W))."""
    flat = images.flatten(2)  # B, 3, HW
    inside = masks.flatten(1)
    first = flat.gather(2, inside.float().argmax(1)[:, None, None].expand(-1, 3, 1))
    same = (flat == first).all(1) | ~inside
    return same.all(1)


def iou(pred: Tensor, target: Tensor) -> Tensor:
    """(B,) intersection over union of bool masks (B, H, W); 1 where both are empty."""
    inter = (pred & target).flatten(1).sum(1)
    union = (pred | target).flatten(1).sum(1)
    return torch.where(union > 0, inter / union.clamp_min(1), torch.ones_like(inter.float()))


def measure(
    dataset: ShapesFolder, segmenter: GrabCutSegmenter, batch_size: int = 64
) -> dict[str, Tensor]:
    """Per-image IoU, class index and opacity over `dataset` with one point at each mask's
    centre of mass, snapped to the nearest mask pixel when it falls outside (as the
    GroundTruthCentroid strategy places it)."""
    ious, labels, opaque = [], [], []
    for images, label, masks in DataLoader(dataset, batch_size=batch_size):
        uint8 = denormalize_to_uint8(images)
        prompts = foreground_points(snap_to_mask(weighted_centroid(masks.float()), masks))
        pred, _ = segmenter.predict(segmenter.embed(uint8), prompts)
        ious.append(iou(pred, masks))
        labels.append(label)
        opaque.append(is_opaque(uint8, masks))
    return {"iou": torch.cat(ious), "label": torch.cat(labels), "opaque": torch.cat(opaque)}


def report(results: dict[str, Tensor]) -> str:
    """Mean IoU overall, per class and opaque vs translucent, one line each."""
    groups = {"overall": torch.ones_like(results["opaque"])}
    for index, name in enumerate(CLASSES):
        groups[name] = results["label"] == index
    groups["opaque"] = results["opaque"]
    groups["translucent"] = ~results["opaque"]
    lines = [f"{'group':<12} {'n':>5} {'mean IoU':>9} {'min IoU':>8}"]
    for name, keep in groups.items():
        values = results["iou"][keep]
        if values.numel():
            lines.append(
                f"{name:<12} {values.numel():>5} {values.mean():>9.4f} {values.min():>8.4f}"
            )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--root", type=Path, default=Path("data/shapes"))
    parser.add_argument("--split", default="test")
    parser.add_argument("--iterations", type=int, default=5)
    parser.add_argument("--point-radius", type=int, default=3)
    parser.add_argument("--prior-radius", type=int, default=7)
    args = parser.parse_args()
    if not args.root.exists():
        generate_dataset(args.root)
    segmenter = GrabCutSegmenter(args.iterations, args.point_radius, args.prior_radius)
    results = measure(ShapesFolder(args.root, args.split), segmenter)
    print(f"GrabCut ceiling on {args.root}/{args.split}: {vars(args)}")
    print(report(results))


if __name__ == "__main__":
    main()
