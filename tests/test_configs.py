"""The shipped configs: each states its method once, and validate, test and predict all read it;
the sweep changes one setting per row."""

from dataclasses import asdict
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


def _settings(row: dict, base_cam: CamSpec) -> tuple[str, dict]:
    """A sweep row's name and every setting it runs with: strategy class, its init arguments
    and each field of the CAM it reads."""
    init_args = dict(row.get("init_args", {}))
    name = init_args.pop("name")
    cam = CamSpec(**init_args.pop("cam")) if "cam" in init_args else base_cam
    settings = {"strategy": row["class_path"].rsplit(".", 1)[1], **init_args}
    settings.update({f"cam.{field}": value for field, value in asdict(cam).items()})
    return name, settings


def test_each_sweep_row_changes_one_setting_of_the_row_its_name_gives() -> None:
    """ "P k=v" must be row P with k set to v and nothing else changed; "centroid" is the base."""
    method = yaml.safe_load((CONFIGS / "sweep.yaml").read_text())["method"]
    base_cam = CamSpec(**method["cam"])
    assert base_cam == DEFAULT_CAM
    rows = dict(
        _settings(row, base_cam)
        for row in method["strategies"]
        if not row["class_path"].endswith("GroundTruthCentroid")
    )
    assert rows["centroid"]["strategy"] == "WeightedCentroid"
    assert {"centroid cam.align=true", "centroid cam.input_scale=2"} <= set(rows)
    for name, settings in rows.items():
        if name == "centroid":
            continue
        parent, change = name.rsplit(" ", 1)
        key, text = change.split("=", 1)
        value = yaml.safe_load(text)
        value = tuple(value) if isinstance(value, list) else value
        assert settings == {**rows[parent], key: value}, name


def test_the_sweep_layers_over_the_quick_start() -> None:
    cli = _cli("quickstart.yaml", "sweep.yaml")
    method = _one(cli, SegmentationEvaluation).pipeline
    assert method.cam == DEFAULT_CAM
    assert [type(s) for s in method.segmenters] == [GrabCutSegmenter]
    names = [s.name for s in method.strategies]
    assert names[0] == "centroid" and names[-1] == "GroundTruthCentroid"
    assert len(names) == len(
        yaml.safe_load((CONFIGS / "sweep.yaml").read_text())["method"]["strategies"]
    )


def test_quick_start_jitters_while_bare_and_from_scratch_fits_only_mirror() -> None:
    """The bare CLI's mirror-only augmentation must not leak into the quick start's (both name
    the same class, and jsonargparse keeps init_args a config leaves out)."""
    quick = _cli("quickstart.yaml").model.augmentation
    assert quick.translate > 0 and quick.blur > 0 and quick.rotate > 0
    for configs in ((), ("quickstart.yaml", "from_scratch.yaml")):
        mirror_only = _cli(*configs).model.augmentation
        assert mirror_only.hflip == 0.5
        assert mirror_only.translate == mirror_only.blur == mirror_only.rotate == 0
