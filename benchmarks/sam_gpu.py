"""SAM and SAM 2.1 on a CUDA GPU: embedding and decoding throughput and SamTuner training
speed, fp32 against bf16.

Random weights of the real architectures (no checkpoint needed) and generated shapes data
(48x64 images, written to a temporary folder). Prints, each in float32 and in bfloat16:
- `SamSegmenter.embed` images/s at encoder batch 1 and `--embed-batch`;
- SAM 2.1 `--sam2-model-type` (if sam2 is installed): `Sam2Segmenter.embed` images/s at
  encoder batch 1 and `--embed-batch`, and `Sam2Segmenter.predict` images/s for one point per
  image (three candidate masks), the decoder autocast to bfloat16 in the bf16 row;
- decoder fine-tuning steps/s of `--model-type` (encoder frozen, embeddings cached: timed
  after the first epoch has filled the cache), batch `--batch`;
- from-scratch training steps/s of `sam_tiny` (every part trains) on the scenes that
  configs/sam_tiny.yaml trains on (`SceneDataModule`), batch `--tiny-batch`.

    python benchmarks/sam_gpu.py
    python benchmarks/sam_gpu.py --model-type vit_l --batch 32 --sam2-model-type hiera_l

It refuses to run without CUDA: the numbers mean nothing on a CPU.
"""

from __future__ import annotations

import argparse
import importlib.util
import tempfile
import time
from pathlib import Path

import lightning as L
import torch
from lightning.pytorch.callbacks import Callback

from lit_gradcam.data.datamodule import ShapesDataModule
from lit_gradcam.data.generate import generate_dataset
from lit_gradcam.prompt_types import Prompts
from lit_gradcam.sam_training import SamTuner
from lit_gradcam.sam_training.scene_data import SceneDataModule
from lit_gradcam.segmenters.sam import SamSegmenter
from lit_gradcam.segmenters.sam2 import Sam2Segmenter
from lit_gradcam.segmenters.sam2_models import INSTALL_COMMAND, SAM2_CONFIGS, build_untrained
from lit_gradcam.segmenters.sam_models import sam_registry

PRECISIONS = {"fp32": ("32-true", None), "bf16": ("bf16-mixed", "bf16")}


class StepTimer(Callback):
    """Times training steps after the first `skip` (warm-up, cache filling), GPU synchronised."""

    def __init__(self, skip: int) -> None:
        self.skip = skip
        self.ends: list[float] = []

    def on_train_batch_end(self, trainer: L.Trainer, *args: object) -> None:
        torch.cuda.synchronize()
        self.ends.append(time.perf_counter())

    def steps_per_second(self) -> float:
        timed = self.ends[self.skip :]
        return (len(timed) - 1) / (timed[-1] - timed[0])


def embed_rate(segmenter: SamSegmenter | Sam2Segmenter, images: torch.Tensor) -> float:
    """`segmenter.embed` images/s over `images` in its encoder chunks, after a warm-up."""
    segmenter.embed(images[: segmenter.encode_batch_size])
    torch.cuda.synchronize()
    start = time.perf_counter()
    segmenter.embed(images)
    torch.cuda.synchronize()
    return len(images) / (time.perf_counter() - start)


def predict_rate(segmenter: Sam2Segmenter, images: torch.Tensor, bf16: bool) -> float:
    """`segmenter.predict` images/s for one foreground point per image (at its centre) on the
    embedded `images`, the decoder autocast to bfloat16 if `bf16`, after a warm-up."""
    state = segmenter.embed(images)
    batch, _, height, width = images.shape
    points = images.new_tensor([[[width // 2, height // 2]]], dtype=torch.float).expand(batch, 1, 2)
    prompts = Prompts(points, torch.ones(batch, 1, dtype=torch.long, device=images.device))
    with torch.autocast(device_type="cuda", dtype=torch.bfloat16, enabled=bf16):
        segmenter.predict(state, prompts)
        torch.cuda.synchronize()
        start = time.perf_counter()
        segmenter.predict(state, prompts)
        torch.cuda.synchronize()
    return batch / (time.perf_counter() - start)


def train_rate(tuner: SamTuner, data: L.LightningDataModule, precision: str, steps: int, skip: int):
    """SamTuner steps/s under `precision`, timing `steps` steps after `skip` untimed ones."""
    timer = StepTimer(skip)
    trainer = L.Trainer(
        accelerator="cuda",
        devices=1,
        precision=precision,
        max_steps=skip + steps + 1,
        limit_val_batches=0,
        num_sanity_val_steps=0,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        callbacks=[timer],
    )
    trainer.fit(tuner, data)
    return timer.steps_per_second()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model-type", default="vit_b", help="vit_b, vit_l or vit_h")
    parser.add_argument("--embed-images", type=int, default=64)
    parser.add_argument("--embed-batch", type=int, default=16)
    parser.add_argument("--batch", type=int, default=16, help="decoder fine-tuning batch")
    parser.add_argument("--tiny-batch", type=int, default=64, help="sam_tiny training batch")
    parser.add_argument("--steps", type=int, default=20, help="timed training steps")
    parser.add_argument("--sam2-model-type", default="hiera_t", choices=sorted(SAM2_CONFIGS))
    args = parser.parse_args()
    if not torch.cuda.is_available():
        raise SystemExit(
            "benchmarks/sam_gpu.py measures CUDA throughput, and torch sees no CUDA device here "
            "(torch.cuda.is_available() is False). Run it on a machine with an NVIDIA GPU; "
            "benchmarks/sam_speed.py and benchmarks/sam_batched_decode.py run on a CPU."
        )
    torch.backends.cuda.matmul.allow_tf32 = False  # fp32 means fp32
    torch.backends.cudnn.allow_tf32 = False
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        train_size = 4 * args.batch
        sizes = {"train": train_size, "val": 8, "test": 8}
        generate_dataset(root / "shapes", sizes, progress=False)
        torch.manual_seed(0)
        weights = root / f"{args.model_type}_random.pth"
        torch.save(sam_registry()[args.model_type]().state_dict(), weights)
        print(f"{torch.cuda.get_device_name()}, {args.model_type} (random weights):")

        sam = sam_registry()[args.model_type]().cuda().eval()
        pixels = torch.randint(0, 256, (args.embed_images, 3, 48, 64), dtype=torch.uint8)
        for name, (_, autocast) in PRECISIONS.items():
            for batch in (1, args.embed_batch):
                segmenter = SamSegmenter.from_model(sam, encode_batch_size=batch, autocast=autocast)
                rate = embed_rate(segmenter, pixels.cuda())
                print(f"  embed {name}, encoder batch {batch:>3}: {rate:9.1f} images/s")
        del sam
        if importlib.util.find_spec("sam2") is None:
            print(f"  SAM 2.1 skipped: sam2 is not installed ({INSTALL_COMMAND})")
        else:
            model = build_untrained(args.sam2_model_type).cuda()
            kind = f"SAM 2.1 {args.sam2_model_type}"
            for name, (_, autocast) in PRECISIONS.items():
                for batch in (1, args.embed_batch):
                    segmenter = Sam2Segmenter.from_model(
                        model, encode_batch_size=batch, autocast=autocast
                    )
                    rate = embed_rate(segmenter, pixels.cuda())
                    print(f"  {kind} embed {name}, encoder batch {batch:>3}: {rate:9.1f} images/s")
                segmenter = Sam2Segmenter.from_model(model, encode_batch_size=args.embed_batch)
                rate = predict_rate(segmenter, pixels[: args.embed_batch].cuda(), name == "bf16")
                print(
                    f"  {kind} decode {name}, batch {args.embed_batch:>3}, one point: "
                    f"{rate:9.1f} images/s"
                )
            del model

        def data(batch: int) -> ShapesDataModule:
            return ShapesDataModule(
                root=str(root / "shapes"), batch_size=batch, train_size=train_size,
                val_size=8, test_size=8,
            )  # fmt: skip

        epoch = train_size // args.batch
        for name, (precision, _) in PRECISIONS.items():
            L.seed_everything(0)
            tuner = SamTuner(args.model_type, str(weights), trainable=["mask_decoder"])
            rate = train_rate(tuner, data(args.batch), precision, args.steps, skip=epoch + 1)
            print(
                f"  fine-tune mask decoder {name}, batch {args.batch}, cached embeddings: "
                f"{rate:7.2f} steps/s"
            )
        for name, (precision, _) in PRECISIONS.items():
            L.seed_everything(0)
            scenes = SceneDataModule(batch_size=args.tiny_batch, val_size=8)
            rate = train_rate(SamTuner("sam_tiny"), scenes, precision, args.steps, 3)
            print(f"  sam_tiny from scratch {name}, batch {args.tiny_batch}: {rate:7.2f} steps/s")


if __name__ == "__main__":
    main()
