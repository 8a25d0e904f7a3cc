"""Does a segmenter cut what the prompt points at? Two-object scenes, each object and the
background prompted in turn.

The scenes come from the foreign generator (`foreign.draw_two_objects` beside this script, test
split; `--split val` to choose a recipe on), which nothing is trained on: two shapes apart from
each other on one image. Each shape is prompted by one foreground point at its most interior
pixel, and the background by one foreground point at the pixel farthest from both shapes and by
one just off each shape (NEAR_MISS pixels from it, as far as can be from the other): the point
of a no-click strategy that misses by a little. Per segmenter (GrabCut, the trained
`sam_tiny`, and vit_b when its official checkpoint is in the cache) it reports:

- `iou_pointed`: mean IoU of the mask with the shape pointed at;
- `other_object`: the share of shape prompts whose mask is the *other* shape (IoU >= 0.5 with it);
- `background_object_iou`: mean, over background prompts, of the mask's best IoU with a shape;
- `near_miss_shape`: the share of points just off a shape whose mask is that shape (IoU >= 0.5
  with it). A SAM given a point on the background returns the background there, not the
  nearest object, so its IoU follows a strategy's hit rate.

    python benchmarks/prompt_following.py --output results/prompt_following.json
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import torch
from foreign import ForeignBackgrounds, draw_two_objects
from machine import describe_machine
from torch import Tensor
from tqdm import tqdm

from lit_gradcam.prompts.base import foreground_points
from lit_gradcam.sam_training.losses import mask_iou
from lit_gradcam.segmenters.base import Segmenter
from lit_gradcam.segmenters.checkpoints import SAM_CHECKPOINTS, default_cache_dir
from lit_gradcam.segmenters.grabcut import GrabCutSegmenter
from lit_gradcam.segmenters.sam import SamSegmenter

#: A mask "is" the other shape when it overlaps it at least this much.
OTHER_IOU = 0.5
#: Distance in pixels from a shape's border of the point that just misses it.
NEAR_MISS = 3.0


def two_object_scenes(count: int, seed: int, split: str = "test") -> tuple[Tensor, Tensor]:
    """uint8 images (N, 3, H, W) and bool masks (N, 2, H, W) of the foreign generator's
    `split`."""
    backgrounds = ForeignBackgrounds()
    images, masks = [], []
    for index in tqdm(range(count), desc="Drawing two-object scenes"):
        image, pair, _ = draw_two_objects(backgrounds, seed, split, index)
        images.append(torch.from_numpy(image).permute(2, 0, 1))
        masks.append(torch.from_numpy(pair))
    return torch.stack(images), torch.stack(masks)


def _distance_to(region: np.ndarray) -> np.ndarray:
    """Each pixel's distance to the nearest pixel of bool `region` (0 inside it)."""
    return cv2.distanceTransform((~region).astype(np.uint8), cv2.DIST_L2, cv2.DIST_MASK_PRECISE)


def farthest_pixel(region: np.ndarray) -> tuple[float, float]:
    """(x, y) of the pixel of bool `region` farthest from its outside (its most interior)."""
    outside = np.pad(~region, 1, constant_values=True)  # the frame counts as outside
    distance = _distance_to(outside)[1:-1, 1:-1]
    y, x = np.unravel_index(np.argmax(distance), distance.shape)
    return float(x), float(y)


def probe_points(masks: Tensor) -> Tensor:
    """(N, 3, 2) points: the most interior pixel of each shape, then of the background."""
    points = []
    for pair in masks.numpy():
        points.append([*(farthest_pixel(mask) for mask in pair), farthest_pixel(~pair.any(0))])
    return torch.tensor(points)


def near_miss_points(masks: Tensor) -> Tensor:
    """(N, 2, 2) points, one per shape: the background pixel whose distance to that shape is
    nearest NEAR_MISS, the one farthest from the other shape among those."""
    points = []
    for pair in masks.numpy():
        distances = [_distance_to(mask) for mask in pair]
        background = ~pair.any(0)
        row = []
        for k in range(2):
            off_by = np.where(background, np.abs(distances[k] - NEAR_MISS), np.inf)
            ties = off_by <= off_by.min() + 1e-6
            y, x = np.unravel_index(np.argmax(np.where(ties, distances[1 - k], -1)), off_by.shape)
            row.append((float(x), float(y)))
        points.append(row)
    return torch.tensor(points)


def score(
    segmenter: Segmenter, images: Tensor, masks: Tensor, points: Tensor, near: Tensor
) -> dict:
    """The prompt-following numbers of one segmenter, and its wall time: `points` from
    `probe_points`, `near` from `near_miss_points`."""
    start = time.perf_counter()
    state = segmenter.embed(images)
    predicted = [segmenter.predict(state, foreground_points(points[:, k]))[0] for k in range(3)]
    missed = [segmenter.predict(state, foreground_points(near[:, k]))[0] for k in range(2)]
    seconds = time.perf_counter() - start
    pointed = torch.cat([mask_iou(predicted[k], masks[:, k]) for k in range(2)])
    other = torch.cat([mask_iou(predicted[k], masks[:, 1 - k]) for k in range(2)])
    background = torch.stack([mask_iou(predicted[2], masks[:, k]) for k in range(2)]).amax(0)
    near_miss = torch.cat([mask_iou(missed[k], masks[:, k]) for k in range(2)])
    return {
        "iou_pointed": pointed.mean().item(),
        "other_object": (other >= OTHER_IOU).float().mean().item(),
        "background_object_iou": background.mean().item(),
        "near_miss_shape": (near_miss >= OTHER_IOU).float().mean().item(),
        "seconds": round(seconds, 1),
    }


def segmenters(sam_tiny: str | None) -> dict[str, Segmenter]:
    """GrabCut, `sam_tiny` from its checkpoint (if given and present) and vit_b (if its
    official checkpoint is in the cache: nothing is downloaded)."""
    found: dict[str, Segmenter] = {"grabcut": GrabCutSegmenter()}
    if sam_tiny is not None and Path(sam_tiny).is_file():
        found["sam_tiny"] = SamSegmenter(model_type="sam_tiny", checkpoint=sam_tiny)
    if (default_cache_dir() / SAM_CHECKPOINTS["vit_b"].filename).is_file():
        found["vit_b"] = SamSegmenter(model_type="vit_b")
    return found


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scenes", type=int, default=500, help="two-object scenes to score")
    parser.add_argument("--seed", type=int, default=0, help="the foreign generator's seed")
    parser.add_argument(
        "--split", default="test", help="the foreign generator's split (val: to choose a recipe)"
    )
    parser.add_argument(
        "--sam-tiny", default="checkpoints/sam_tiny/last.ckpt", help="sam_tiny checkpoint"
    )
    parser.add_argument("--output", help="JSON file to write")
    args = parser.parse_args(argv)

    images, masks = two_object_scenes(args.scenes, args.seed, args.split)
    points, near = probe_points(masks), near_miss_points(masks)
    rows = []
    for name, segmenter in segmenters(args.sam_tiny).items():
        row = {"segmenter": name, **score(segmenter, images, masks, points, near)}
        print(json.dumps(row))
        rows.append(row)
    record = {
        "command": shlex.join(["python", "benchmarks/prompt_following.py", *sys.argv[1:]]),
        "scenes": args.scenes,
        "seed": args.seed,
        "split": args.split,
        "machine": describe_machine(),
        "rows": rows,
    }
    if args.output:
        Path(args.output).parent.mkdir(parents=True, exist_ok=True)
        Path(args.output).write_text(json.dumps(record, indent=2) + "\n")
    return record


if __name__ == "__main__":
    main()
