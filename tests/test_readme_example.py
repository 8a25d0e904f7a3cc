"""The README's "add a strategy or a segmenter" code runs as printed, inside the pipeline."""

import re
from pathlib import Path

import torch
import torchvision

from lit_gradcam.cam.spec import CamSpec
from lit_gradcam.method.pipeline import BatchPipeline
from lit_gradcam.prompts.base import PromptStrategy
from lit_gradcam.segmenters.base import Segmenter

ROOT = Path(__file__).resolve().parents[1]


def _example() -> dict:
    readme = (ROOT / "README.md").read_text()
    section = readme[readme.index("## Add a strategy or a segmenter") :]
    code = re.search(r"```python\n(.*?)```", section, re.S).group(1)
    namespace: dict = {}
    exec(compile(code, "README.md", "exec"), namespace)
    return namespace


def test_the_readme_strategy_and_segmenter_run_in_the_pipeline() -> None:
    example = _example()
    strategy, segmenter = example["HottestPixel"](), example["WholeImage"]()
    assert isinstance(strategy, PromptStrategy) and isinstance(segmenter, Segmenter)
    heatmaps = torch.zeros(2, 48, 64)
    heatmaps[0, 10, 20] = heatmaps[1, 30, 5] = 1.0
    prompts = strategy.prompts(heatmaps)
    assert prompts.points.tolist() == [[[20.0, 10.0]], [[5.0, 30.0]]]
    torch.manual_seed(0)
    classifier = torchvision.models.resnet18(num_classes=5).eval()
    pipeline = BatchPipeline([segmenter], [strategy], CamSpec())
    output = pipeline.run(classifier, torch.randn(2, 3, 48, 64))
    result = output.results["whole/HottestPixel"]
    assert result.masks.all() and result.masks.shape == (2, 48, 64)
