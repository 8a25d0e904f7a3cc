"""The SAM path end to end, offline: `main.py test` with a vit_b of RANDOM weights.

Its numbers mean nothing (the segmenter is untrained); the run shows that the official
architecture loads from a checkpoint file (`torch.load(weights_only=True)`), embeds each image
once and answers every strategy, and that results and grids reach the run folder. It needs a
trained classifier checkpoint (e.g. after `python main.py fit --config configs/quickstart.yaml`).

    python benchmarks/sam_random_weights_run.py --images 4
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
from pathlib import Path

import torch
import yaml
from segment_anything import sam_model_registry

from lit_gradcam.cli import cli_main


def _first_test_images(source: Path, target: Path, count: int) -> Path:
    """A shapes-layout folder holding only the first `count` test images of `source`."""
    stems = [p.stem for p in sorted((source / "images" / "test").glob("*.png"))[:count]]
    for kind, suffix in (("images", ".png"), ("masks", ".png"), ("labels", ".txt")):
        (target / kind / "test").mkdir(parents=True)
        for stem in stems:
            shutil.copy(source / kind / "test" / f"{stem}{suffix}", target / kind / "test")
    return target


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=4, help="test images to segment")
    parser.add_argument("--classifier", default="checkpoints/quickstart", help="ckpt folder")
    parser.add_argument("--data", default="data/quickstart", help="dataset folder")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        data = _first_test_images(Path(args.data), Path(tmp) / "data", args.images)
        checkpoint = Path(tmp) / "sam_vit_b_random.pth"
        torch.manual_seed(0)
        torch.save(sam_model_registry["vit_b"]().state_dict(), checkpoint)
        override = {
            "trainer": {
                "logger": {
                    "class_path": "lightning.pytorch.loggers.TensorBoardLogger",
                    "init_args": {"save_dir": "lightning_logs", "name": "sam_vit_b_random"},
                },
            },
            "method": {
                "segmenters": [
                    {
                        "class_path": "lit_gradcam.segmenters.sam.SamSegmenter",
                        "init_args": {"checkpoint": str(checkpoint)},
                    }
                ]
            },
            "evaluation": {"num_logged_images": args.images},
        }
        override_path = Path(tmp) / "override.yaml"
        override_path.write_text(yaml.safe_dump(override))
        cli = cli_main(
            [
                "test",
                "--config", "configs/sam_vit_b.yaml",
                "--config", str(override_path),
                "--model.weights", "null",
                "--data.root", str(data),
                "--data.generate", "false",
                "--data.eval_batch_size", str(args.images),
                "--checkpoint.dirpath", args.classifier,
                "--ckpt_path", "last",
            ]
        )  # fmt: skip
    print(f"results (random SAM weights: meaningless numbers) in {cli.trainer.log_dir}")
    print((Path(cli.trainer.log_dir) / "results.md").read_text())


if __name__ == "__main__":
    main()
