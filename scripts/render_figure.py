"""Render the README's picture of the method: per segmenter, for the first test images, input |
heatmap | prompts | mask | ground truth, from a trained classifier and the test split.

    python scripts/render_figure.py --ckpt checkpoints/quickstart/last.ckpt \
        --data data/quickstart --sam-tiny checkpoints/sam_tiny/last.ckpt \
        --output docs/figures/pipeline.png

Each panel group is `pipeline_grid` (the grid the test run logs to TensorBoard) of the predict
strategy, one group per segmenter, side by side under a caption.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch
from PIL import Image, ImageDraw

from lit_gradcam.classifier import ShapeClassifier
from lit_gradcam.data.dataset import ShapesFolder
from lit_gradcam.drawing import pipeline_grid
from lit_gradcam.method.pipeline import BatchPipeline
from lit_gradcam.segmenters.grabcut import GrabCutSegmenter
from lit_gradcam.segmenters.sam import SamSegmenter

CAPTION_HEIGHT = 22
COLUMNS = "input | heatmap | prompts | mask | ground truth"


def segmenter_grids(
    model: ShapeClassifier, images: torch.Tensor, gt_masks: torch.Tensor, segmenters: list
) -> list[tuple[str, Image.Image]]:
    """(caption, grid) per segmenter, for the method's predict strategy."""
    (strategy,) = BatchPipeline(segmenters=segmenters).for_predict().strategies
    output = BatchPipeline(segmenters, [strategy]).run(model.model, images)
    grids = []
    for segmenter in segmenters:
        result = output.results[f"{segmenter.name}/{strategy.name}"]
        grid = pipeline_grid(
            output.images_uint8, result.heatmaps, result.prompts, result.masks, gt_masks
        )
        caption = f"{strategy.name} + {segmenter.name}: {COLUMNS}"
        grids.append((caption, Image.fromarray(grid.permute(1, 2, 0).numpy())))
    return grids


def side_by_side(grids: list[tuple[str, Image.Image]]) -> Image.Image:
    """The grids next to each other, each under its caption, on white."""
    gap = 12
    width = sum(grid.width for _, grid in grids) + gap * (len(grids) - 1)
    height = CAPTION_HEIGHT + max(grid.height for _, grid in grids)
    canvas = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(canvas)
    x = 0
    for caption, grid in grids:
        draw.text((x + 4, 4), caption, fill="black")
        canvas.paste(grid, (x, CAPTION_HEIGHT))
        x += grid.width + gap
    return canvas


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--ckpt", required=True, help="a ShapeClassifier checkpoint")
    parser.add_argument("--data", required=True, help="a dataset folder with a test split")
    parser.add_argument("--sam-tiny", help="a trained sam_tiny checkpoint (adds its column)")
    parser.add_argument("--images", type=int, default=6, help="test images shown")
    parser.add_argument("--output", default="docs/figures/pipeline.png")
    args = parser.parse_args(argv)

    model = ShapeClassifier.load_from_checkpoint(args.ckpt, map_location="cpu").eval()
    test = ShapesFolder(args.data, "test")
    items = [test[i] for i in range(args.images)]
    images = torch.stack([image for image, _, _ in items])
    gt_masks = torch.stack([mask for _, _, mask in items])
    segmenters = [GrabCutSegmenter()]
    if args.sam_tiny:
        segmenters.append(SamSegmenter("sam_tiny", checkpoint=args.sam_tiny, name="sam_tiny"))
    figure = side_by_side(segmenter_grids(model, images, gt_masks, segmenters))
    Path(args.output).parent.mkdir(parents=True, exist_ok=True)
    figure.save(args.output)
    print(f"wrote {args.output} ({figure.width}x{figure.height})")


if __name__ == "__main__":
    main()
