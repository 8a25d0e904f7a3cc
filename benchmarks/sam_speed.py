"""SamSegmenter speed: the image encoder (`embed`) against prompt decoding (`predict`).

Random weights (no checkpoint needed) of the real architecture, 48x64 images like the dataset's.
Prints seconds per image for `embed` and for one `predict` of one point per image; on CUDA also
`embed` images/s at batch 1 and 16, in float32 and under bf16 autocast.

    python benchmarks/sam_speed.py                      # CPU, 2 images
    python benchmarks/sam_speed.py --device cuda --images 16
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

import torch
from segment_anything import sam_model_registry

from lit_gradcam.prompt_types import Prompts
from lit_gradcam.segmenters.sam import SamSegmenter

HEIGHT, WIDTH = 48, 64


def seconds(fn: Callable[[], object], device: torch.device, repeats: int, warm_up: bool) -> float:
    """Mean wall-clock seconds of `fn()` over `repeats` runs, after a warm-up run if asked."""
    if warm_up:
        fn()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    start = time.perf_counter()
    for _ in range(repeats):
        fn()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return (time.perf_counter() - start) / repeats


def images(batch: int) -> torch.Tensor:
    generator = torch.Generator().manual_seed(0)
    return torch.randint(0, 256, (batch, 3, HEIGHT, WIDTH), dtype=torch.uint8, generator=generator)


def one_point(batch: int) -> Prompts:
    points = torch.tensor([[[WIDTH / 2, HEIGHT / 2]]]).expand(batch, 1, 2).contiguous()
    return Prompts(points, torch.ones(batch, 1, dtype=torch.long))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model-type", default="vit_b")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--images", type=int, default=2, help="batch for embed vs predict")
    parser.add_argument("--repeats", type=int, default=1, help="timed runs after a warm-up")
    args = parser.parse_args()
    device = torch.device(args.device)
    torch.manual_seed(0)
    sam = sam_model_registry[args.model_type]().to(device)
    batch = images(args.images).to(device)
    prompts = one_point(args.images).to(device)

    segmenter = SamSegmenter.from_model(sam, encode_batch_size=args.images)
    state = segmenter.embed(batch)  # the warm-up of both timings
    embed_s = seconds(lambda: segmenter.embed(batch), device, args.repeats, False) / args.images
    predict_s = seconds(lambda: segmenter.predict(state, prompts), device, 5, False) / args.images
    print(f"{args.model_type} on {device} ({torch.get_num_threads()} CPU threads):")
    print(f"  embed   {embed_s:9.4f} s/image  (batch {args.images})")
    print(f"  predict {predict_s:9.4f} s/image  (one point, multimask, best IoU)")
    print(f"  embed / predict = {embed_s / predict_s:.0f}x")
    if device.type != "cuda":
        return
    print("  embed throughput (images/s):")
    for autocast in (None, "bf16"):
        for size in (1, 16):
            segmenter = SamSegmenter.from_model(sam, encode_batch_size=size, autocast=autocast)
            chunk = images(size).to(device)
            per_call = seconds(lambda s=segmenter, c=chunk: s.embed(c), device, 5, True)
            print(f"    {autocast or 'fp32':>5} batch {size:>2}: {size / per_call:8.1f}")


if __name__ == "__main__":
    main()
