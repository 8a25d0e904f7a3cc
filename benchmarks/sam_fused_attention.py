"""The fused image-encoder attention (`segmenters.fused_attention`) against segment_anything's own
`Attention`, in the same run, on the same weights and batch.

Times one `SamTuner` training step of `sam_tiny` (SAM preprocessing, encoder, every prompt mode,
loss, backward, AdamW) with each attention, alternating the two so that both see the same machine
state, and prints seconds per step (best of the repeats) and the official / fused ratio.

    python benchmarks/sam_fused_attention.py
    python benchmarks/sam_fused_attention.py --output results/sam_fused_attention.json  # README
"""

from __future__ import annotations

import argparse
import copy
import json
import platform
import time
from pathlib import Path

import torch
from segment_anything.modeling.image_encoder import Attention

from lit_gradcam.imaging import normalize_imagenet
from lit_gradcam.sam_training.tuner import SamTuner

HEIGHT, WIDTH = 48, 64


def random_batch(images: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Images as the data module serves them (normalised) and a filled rectangle per mask."""
    generator = torch.Generator().manual_seed(0)
    pixels = torch.randint(0, 256, (images, 3, HEIGHT, WIDTH), generator=generator)
    masks = torch.zeros(images, HEIGHT, WIDTH)
    for index in range(images):
        top, left = torch.randint(0, HEIGHT // 2, (2,), generator=generator).tolist()
        masks[index, top : top + 12, left : left + 16] = 1
    return normalize_imagenet(pixels.float() / 255), torch.zeros(images, dtype=torch.long), masks


def tuner_step(tuner: SamTuner, optimizer: torch.optim.Optimizer, batch) -> None:
    loss = tuner.training_step(batch, 0)
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--images", type=int, default=32, help="training batch size")
    parser.add_argument("--repeats", type=int, default=5, help="timed steps per variant")
    parser.add_argument("--output", type=Path, help="also write the numbers to this JSON file")
    args = parser.parse_args()
    torch.manual_seed(0)
    mix = {"point": 0.4, "points_background": 0.2, "box": 0.2, "box_point": 0.2}
    fused = SamTuner(model_type="sam_tiny", prompt_mix=mix, correction=False)
    official = copy.deepcopy(fused)
    for block in official.sam.image_encoder.blocks:
        block.attn.__class__ = Attention
    batch = random_batch(args.images)
    best = {"official": float("inf"), "fused": float("inf")}
    tuners = {"official": official, "fused": fused}
    optimizers = {name: torch.optim.AdamW(t.parameters(), lr=1e-4) for name, t in tuners.items()}
    for tuner in tuners.values():
        tuner.log = tuner.log_dict = lambda *args, **kwargs: None  # no trainer attached
    for repeat in range(args.repeats + 1):  # the first round warms up
        for name, tuner in tuners.items():
            torch.manual_seed(repeat)  # both variants draw the same prompts
            start = time.perf_counter()
            tuner_step(tuner, optimizers[name], batch)
            if repeat:
                best[name] = min(best[name], time.perf_counter() - start)
    ratio = best["official"] / best["fused"]
    print(
        f"sam_tiny training step, {args.images} images, {torch.get_num_threads()} CPU threads: "
        f"official {best['official']:.3f} s, fused {best['fused']:.3f} s, "
        f"official / fused = {ratio:.2f}x"
    )
    if args.output is not None:
        args.output.parent.mkdir(parents=True, exist_ok=True)
        record = {
            "model_type": "sam_tiny",
            "machine": f"{platform.machine()}, {torch.get_num_threads()} torch threads",
            "images": args.images,
            "official_step_s": best["official"],
            "fused_step_s": best["fused"],
        }
        args.output.write_text(json.dumps(record, indent=2) + "\n")


if __name__ == "__main__":
    main()
