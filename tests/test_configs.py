"""The shipped configs: each states its method once, and validate, test and predict all read it."""

from pathlib import Path

import pytest
import yaml

from lit_gradcam.cam.spec import CamSpec
from lit_gradcam.cli import LitGradCamCLI, cli_main
from lit_gradcam.evaluation.callback import SegmentationEvaluation
from lit_gradcam.pipeline import DEFAULT_CAM, default_strategies
from lit_gradcam.prediction import MaskWriter
from lit_gradcam.segmenters.grabcut import GrabCutSegmenter
from lit_gradcam.segmenters.sam import SamSegmenter

CONFIGS = Path(__file__).resolve().parents[1] / "configs"
DEFAULT_NAMES = [strategy.name for strategy in default_strategies()]


def _cli(*configs: str) -> LitGradCamCLI:
    """The CLI built from shipped configs (weights from scratch: nothing is fetched or built)."""
    args = [arg for config in configs for arg in ("--config", str(CONFIGS / config))]
    return cli_main([*args, "--model.weights", "null"], run=False)


def _one(cli: LitGradCamCLI, kind: type) -> object:
    (callback,) = [c for c in cli.trainer.callbacks if isinstance(c, kind)]
    return callback


@pytest.mark.parametrize(
    ("config", "segmenter", "strategies", "predict_strategy", "cam"),
    [
        ("quickstart.yaml", GrabCutSegmenter, DEFAULT_NAMES, "CamConsensus", DEFAULT_CAM),
        ("sam_vit_b.yaml", SamSegmenter, DEFAULT_NAMES, "CamConsensus", DEFAULT_CAM),
        (
            "paper.yaml",
            SamSegmenter,
            ["CenterPoint", "OnlyForeground", "ForegroundBackground", "GroundTruthCentroid"],
            "OnlyForeground",
            CamSpec(method="gradcam"),
        ),
    ],
)
def test_evaluation_and_predict_read_the_config_s_one_method(
    config: str, segmenter: type, strategies: list[str], predict_strategy: str, cam: CamSpec
) -> None:
    written = yaml.safe_load((CONFIGS / config).read_text())
    assert "callbacks" not in written["trainer"] and set(written.get("output", {})) <= {
        "output_dir",
        "overwrite",
    }
    assert (CONFIGS / config).read_text().count("Segmenter") == 1  # one segmenter, named once

    cli = _cli(config)
    method = _one(cli, SegmentationEvaluation).pipeline
    assert _one(cli, MaskWriter).method is method
    assert [type(s) for s in method.segmenters] == [segmenter]
    assert [s.name for s in method.strategies] == strategies
    predict = method.for_predict()
    assert [s.name for s in predict.strategies] == [predict_strategy]
    assert predict.segmenters == method.segmenters
    assert predict.cam_of(predict.strategies[0]) == cam
