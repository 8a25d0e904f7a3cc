"""How well `predict`'s no-shape flag separates images without a shape from images with one.

    python benchmarks/no_shape.py --ckpt checkpoints/recipes/foreign3500_shapes/last.ckpt \
        --data data/foreign3500 --output results/no_shape_foreign3500.json

The flag is the one saved in the classifier checkpoint (`NoShapeFlag`'s state: its presence
net and threshold): its threshold is calibrated as a `fit` with `--no_shape.quantile` (default:
the flag's) calibrates it, from the presence scores of the folder's val split (images that all
hold a shape), whatever quantile the checkpoint was fitted with. It is then applied to the
folder's test split (the share of shape images flagged, which should be small) and to
background-only images of the foreign generator (`foreign.draw_background_only`; the share
flagged, which should be large), of its val split and of its test split, and to crops of the
shapes generator's own `natural` photos (`natural_background_flagged`: the photos drawn behind
its training shapes). `--other-data` also applies it to another folder's test split, whose
shapes the checkpoint never saw the like of (`other_test_shapes_flagged`). Nothing is tuned on
the test images.
"""

from __future__ import annotations

import argparse
import inspect
import json
import platform
import sys
from pathlib import Path

import numpy as np
import torch
from foreign import ForeignBackgrounds, draw_background_only
from torch.utils.data import DataLoader
from tqdm import tqdm

from lit_gradcam.classifier.no_shape import NoShapeFlag
from lit_gradcam.data.backgrounds import NaturalBackgrounds
from lit_gradcam.data.dataset import ShapesFolder
from lit_gradcam.imaging import image_tensor


def flagged_share(flag: NoShapeFlag, images: torch.Tensor) -> float:
    """The share of `images` (normalised, (N, 3, H, W)) that the flag marks as holding no shape."""
    flags = torch.cat([flag.flags(batch) for batch in images.split(200)])
    return flags.float().mean().item()


def background_images(
    sources: ForeignBackgrounds, count: int, seed: int, split: str
) -> torch.Tensor:
    """`count` normalised background-only images of the foreign generator's `split`."""
    return torch.stack(
        [
            image_tensor(torch.from_numpy(np.array(draw_background_only(sources, seed, split, i))))
            for i in tqdm(range(count), desc=f"Drawing {split} background-only images")
        ]
    )


def natural_crops(count: int, seed: int) -> torch.Tensor:
    """`count` normalised crops of the shapes generator's `natural` photos."""
    photos, rng = NaturalBackgrounds(), np.random.default_rng(seed)
    return torch.stack(
        [image_tensor(torch.from_numpy(photos.sample(rng).copy())) for _ in range(count)]
    )


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--ckpt", required=True, help="a ShapeClassifier checkpoint")
    parser.add_argument("--data", required=True, help="the folder it was trained on")
    parser.add_argument("--backgrounds", type=int, default=500, help="background-only images")
    parser.add_argument("--seed", type=int, default=0, help="seed of the background images")
    default = inspect.signature(NoShapeFlag).parameters["quantile"].default
    parser.add_argument(
        "--quantile", type=float, default=default, help="no_shape.quantile to calibrate with"
    )
    parser.add_argument(
        "--other-data", help="a folder of another generator: the share of its test split flagged"
    )
    parser.add_argument("--output", help="JSON file for the results")
    args = parser.parse_args(argv)

    flag = NoShapeFlag.from_checkpoint(args.ckpt, quantile=args.quantile)
    if flag.net is None:
        parser.error(f"--ckpt {args.ckpt} holds no no-shape flag (saved with it off or before it)")
    val, test = ShapesFolder(args.data, "val"), ShapesFolder(args.data, "test")
    flag.calibrate(torch.cat([flag.scores(images) for images, _, _ in DataLoader(val, 200)]))
    shapes = torch.stack([test[i][0] for i in range(len(test))])
    sources = ForeignBackgrounds()
    record = {
        "command": "python benchmarks/no_shape.py " + " ".join(argv or sys.argv[1:]),
        "checkpoint": args.ckpt,
        "data": args.data,
        "quantile": flag.quantile,
        "threshold": round(flag.threshold, 4),
        "background_images": args.backgrounds,
        "val_background_flagged": round(
            flagged_share(flag, background_images(sources, args.backgrounds, args.seed, "val")), 4
        ),
        "background_flagged": round(
            flagged_share(flag, background_images(sources, args.backgrounds, args.seed, "test")), 4
        ),
        "natural_background_flagged": round(
            flagged_share(flag, natural_crops(args.backgrounds, args.seed)),
            4,
        ),
        "test_shape_images": len(test),
        "test_shapes_flagged": round(flagged_share(flag, shapes), 4),
        "machine": platform.processor() or platform.machine(),
    }
    if args.other_data:
        other = ShapesFolder(args.other_data, "test")
        record["other_data"] = args.other_data
        record["other_test_shapes_flagged"] = round(
            flagged_share(flag, torch.stack([other[i][0] for i in range(len(other))])), 4
        )
    print(json.dumps(record, indent=2))
    if args.output:
        Path(args.output).write_text(json.dumps(record, indent=2) + "\n")
    return record


if __name__ == "__main__":
    main()
