"""Do the masks `python main.py predict` writes score what `python main.py test` reports?

Reads the masks written for a folder of test-split images, scores them against the split's
ground truth with the reference IoU (per image, averaged), and prints that beside the `iou` of
the same (segmenter, strategy) row in a test run's results.json.

    python main.py predict --config configs/quickstart.yaml --ckpt_path last \
        --data.predict_dir data/quickstart/images/test --output.output_dir predictions/test
    python benchmarks/predict_vs_test.py --root data/quickstart --predictions predictions/test \
        --results lightning_logs/quickstart/version_1/results.json --key grabcut/WeightedCentroid
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
from PIL import Image


def mean_iou(root: Path, predictions: Path, split: str = "test") -> tuple[float, int]:
    """Course IoU of every written mask against its GT mask (empty GT masks skipped)."""
    ious = []
    for truth_path in sorted((root / "masks" / split).glob("*.png")):
        written = predictions / f"{truth_path.stem}_mask.png"
        truth = np.array(Image.open(truth_path).convert("L")) > 0
        if not truth.any():
            continue
        mask = np.array(Image.open(written)) > 0
        ious.append((mask & truth).sum() / (mask | truth).sum())
    return float(np.mean(ious)), len(ious)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", type=Path, required=True, help="dataset folder")
    parser.add_argument("--predictions", type=Path, required=True, help="predict's output_dir")
    parser.add_argument("--results", type=Path, required=True, help="a test run's results.json")
    parser.add_argument("--key", required=True, help="segmenter/strategy, e.g. grabcut/Name")
    args = parser.parse_args()
    iou, count = mean_iou(args.root, args.predictions)
    reported = json.loads(args.results.read_text())["metrics"][f"eval/{args.key}/iou"]
    print("| source | images | iou |\n|---|---|---|")
    print(f"| predict masks | {count} | {iou:.4f} |\n| test results.json | - | {reported:.4f} |")
    gap = abs(iou - reported)
    print(f"difference {gap:.4f} ({'within' if gap <= 0.05 else 'OVER'} 0.05)")


if __name__ == "__main__":
    main()
