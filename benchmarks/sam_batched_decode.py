"""Batched mask decoding across images against the per-image loop, in the same run.

`SamSegmenter.predict` decodes all images with the same number of points in one vmapped
mask-decoder call (`decode_masks`); the reference is the loop it replaced, the prompt encoder and
mask decoder called once per image, on the same embeddings (the encoder is not run: random
embeddings of the right shape cost the decoder the same). Times decoding without gradients and,
as training runs it, forward + backward; prints seconds per batch (best of the repeats) and the
loop / batched ratio, and checks that `predict` gives the loop's masks.

    python benchmarks/sam_batched_decode.py                         # vit_b, CPU, 16 images
    python benchmarks/sam_batched_decode.py --model-type sam_tiny --images 64
    python benchmarks/sam_batched_decode.py --device cuda --images 64
    python benchmarks/sam_batched_decode.py --model-type sam_tiny --images 32 \
        --output results/sam_batched_decode/sam_tiny.json   # the README's numbers
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable
from pathlib import Path

import torch
from machine import describe_machine
from segment_anything.utils.transforms import ResizeLongestSide
from torch import Tensor

from lit_gradcam.prompt_types import Prompts
from lit_gradcam.segmenters.mask_choice import best_of
from lit_gradcam.segmenters.sam import SamSegmenter, SamState, decode_masks
from lit_gradcam.segmenters.sam_models import sam_registry

HEIGHT, WIDTH = 48, 64


def seconds(fn: Callable[[], object], device: torch.device, repeats: int) -> float:
    """Best wall-clock seconds of `fn()` over `repeats` runs, after one warm-up run."""
    fn()
    best = float("inf")
    for _ in range(repeats):
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        start = time.perf_counter()
        fn()
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        best = min(best, time.perf_counter() - start)
    return best


def random_state(sam, batch: int, device: torch.device) -> SamState:
    """Random embeddings shaped as the encoder's output for `batch` 48x64 images."""
    size = sam.prompt_encoder.image_embedding_size
    dim = sam.prompt_encoder.embed_dim
    generator = torch.Generator().manual_seed(0)
    embeddings = torch.randn(batch, dim, *size, generator=generator).to(device)
    input_size = ResizeLongestSide.get_preprocess_shape(HEIGHT, WIDTH, sam.image_encoder.img_size)
    return SamState(embeddings, input_size, (HEIGHT, WIDTH), device)


def random_prompts(batch: int, points: int) -> Prompts:
    generator = torch.Generator().manual_seed(1)
    xy = torch.rand(batch, points, 2, generator=generator) * torch.tensor([WIDTH - 1, HEIGHT - 1])
    labels = torch.ones(batch, points, dtype=torch.long)
    labels[:, 1::2] = 0
    return Prompts(xy, labels)


def decode(
    sam, state: SamState, points: tuple[Tensor, Tensor], loop: bool
) -> tuple[Tensor, Tensor]:
    """Best-IoU mask logits (B, H, W) and IoU (B,), three candidates for one point and one
    otherwise (as `predict`): one `decode_masks` call, or the loop it replaced (prompt encoder
    and mask decoder per image)."""
    multimask = points[0].shape[1] == 1
    if not loop:
        low_res, iou = best_of(*decode_masks(sam, state.embeddings, points, None, multimask))
    else:
        image_pe = sam.prompt_encoder.get_dense_pe()
        outputs = []
        for index in range(len(state.embeddings)):
            one = slice(index, index + 1)
            sparse, dense = sam.prompt_encoder(
                points=(points[0][one], points[1][one]), boxes=None, masks=None
            )
            outputs.append(
                best_of(
                    *sam.mask_decoder(
                        image_embeddings=state.embeddings[one],
                        image_pe=image_pe,
                        sparse_prompt_embeddings=sparse,
                        dense_prompt_embeddings=dense,
                        multimask_output=multimask,
                    )
                )
            )
        low_res, iou = (torch.cat(parts) for parts in zip(*outputs, strict=True))
    masks = sam.postprocess_masks(low_res[:, None], state.input_size, state.original_size)
    return masks[:, 0], iou


def train_step(sam, state: SamState, points: tuple[Tensor, Tensor], loop: bool) -> None:
    """`decode` forward and backward, as training runs it."""
    embeddings = state.embeddings.detach().requires_grad_(True)
    grad_state = SamState(embeddings, state.input_size, state.original_size, state.device)
    logits, iou = decode(sam, grad_state, points, loop)
    (logits.mean() + iou.mean()).backward()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model-type", default="vit_b", help="vit_b, vit_l, vit_h or sam_tiny")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--images", type=int, default=16)
    parser.add_argument("--points", type=int, default=1, help="points per image")
    parser.add_argument("--repeats", type=int, default=3, help="timed runs (best is kept)")
    parser.add_argument("--output", type=Path, help="also write the numbers to this JSON file")
    args = parser.parse_args()
    device = torch.device(args.device)
    torch.manual_seed(0)
    sam = sam_registry()[args.model_type]().to(device)
    segmenter = SamSegmenter.from_model(sam)
    state = random_state(sam, args.images, device)
    prompts = random_prompts(args.images, args.points).to(device)

    transform = ResizeLongestSide(sam.image_encoder.img_size)
    coords = transform.apply_coords_torch(prompts.points, (HEIGHT, WIDTH))
    points = (coords, prompts.labels.int())
    with torch.no_grad():
        predicted, _ = segmenter.predict_logits(state, prompts)
        looped, _ = decode(sam, state, points, loop=True)
    same = torch.equal(predicted > 0, looped > 0)
    difference = (predicted - looped).abs().max().item()

    with torch.no_grad():
        loop_s = seconds(lambda: decode(sam, state, points, True), device, args.repeats)
        batched_s = seconds(lambda: decode(sam, state, points, False), device, args.repeats)
    predict_s = seconds(lambda: segmenter.predict(state, prompts), device, args.repeats)
    sam.train()
    loop_train_s = seconds(lambda: train_step(sam, state, points, True), device, args.repeats)
    batched_train_s = seconds(lambda: train_step(sam, state, points, False), device, args.repeats)

    print(
        f"{args.model_type} mask decoder on {device} ({torch.get_num_threads()} CPU threads), "
        f"{args.images} images x {args.points} point(s):"
    )
    print(f"  predict's masks equal the loop's: {same} (largest logit difference {difference:.1e})")
    print(f"  decode         loop {loop_s:8.4f} s   batched {batched_s:8.4f} s   "
          f"loop / batched = {loop_s / batched_s:5.2f}x")  # fmt: skip
    print(f"  SamSegmenter.predict (coordinates, grouping, decode) {predict_s:8.4f} s")
    print(f"  train fwd+bwd  loop {loop_train_s:8.4f} s   batched {batched_train_s:8.4f} s   "
          f"loop / batched = {loop_train_s / batched_train_s:5.2f}x")  # fmt: skip
    if args.output is not None:
        args.output.parent.mkdir(parents=True, exist_ok=True)
        record = {
            "model_type": args.model_type,
            "device": str(device),
            "machine": describe_machine(),
            "images": args.images,
            "points": args.points,
            "masks_equal": same,
            "decode_loop_s": loop_s,
            "decode_batched_s": batched_s,
            "train_loop_s": loop_train_s,
            "train_batched_s": batched_train_s,
        }
        args.output.write_text(json.dumps(record, indent=2) + "\n")


if __name__ == "__main__":
    main()
