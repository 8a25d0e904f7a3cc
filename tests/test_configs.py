"""The shipped configs: each states its method once, and validate, test and predict all read it;
the sweep changes one setting per row."""

from dataclasses import asdict
from pathlib import Path

import lightning as L
import pytest
import yaml

from lit_gradcam.cam.spec import CamSpec
from lit_gradcam.cli import LitGradCamCLI, cli_main
from lit_gradcam.evaluation.callback import SegmentationEvaluation
from lit_gradcam.method.pipeline import DEFAULT_CAM, default_strategies
from lit_gradcam.prediction.writer import MaskWriter
from lit_gradcam.segmenters.checkpoints import SAM_CHECKPOINTS, default_cache_dir
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


def test_quickstart_sam_scores_the_quick_start_with_grabcut_and_the_trained_sam() -> None:
    """Both segmenters, named so that metric keys say which is which, on the quick start's own
    data and checkpoints (so `--ckpt_path last` is the quick start's fit)."""
    cli = _cli("quickstart_sam.yaml")
    method = _one(cli, SegmentationEvaluation).pipeline
    assert [(type(s), s.name) for s in method.segmenters] == [
        (GrabCutSegmenter, "grabcut"),
        (SamSegmenter, "sam_tiny"),
    ]
    sam = method.segmenters[1]
    assert sam.model_type == "sam_tiny" and sam.checkpoint == "checkpoints/sam_tiny/last.ckpt"
    names = [s.name for s in method.strategies]
    assert names == DEFAULT_NAMES and {"GroundTruthPoint", "GroundTruthBox"} <= set(names)
    quickstart = _cli("quickstart.yaml")
    assert cli.trainer.checkpoint_callback.dirpath == quickstart.trainer.checkpoint_callback.dirpath
    assert cli.datamodule.hparams == quickstart.datamodule.hparams
    assert cli.trainer.logger.name == "quickstart_sam" and quickstart.trainer.logger.name == (
        "quickstart"
    )


@pytest.mark.parametrize(
    ("config", "model_type", "trainable", "cached"),
    [
        ("sam_tiny.yaml", "sam_tiny", ["image_encoder", "prompt_encoder", "mask_decoder"], False),
        ("sam_vit_b_finetune.yaml", "vit_b", ["mask_decoder"], True),
    ],
)
def test_sam_configs_train_a_sam_tuner_without_the_classifier_s_callbacks(
    config: str, model_type: str, trainable: list[str], cached: bool, monkeypatch
) -> None:
    """The model class comes from the config; the no-click evaluation and mask writer, which
    need the classifier, are left out; checkpoints keep the best point IoU."""
    from lit_gradcam.sam_training import SamTuner, tuner

    built = []
    monkeypatch.setattr(
        tuner, "build_sam", lambda *args, **kwargs: built.append((args, kwargs)) or _tiny_sam()
    )
    cli = cli_main(["--config", str(CONFIGS / config)], run=False)
    assert isinstance(cli.model, SamTuner)
    assert built == [((model_type, None), {"untrained": True})]
    assert cli.model.hparams.trainable == trainable
    assert (cli.model.cache is not None) is cached
    assert not [c for c in cli.trainer.callbacks if isinstance(c, SegmentationEvaluation)]
    assert not [c for c in cli.trainer.callbacks if isinstance(c, MaskWriter)]
    checkpoint = cli.trainer.checkpoint_callback
    assert checkpoint.monitor == "val/iou_point" and checkpoint.mode == "max"
    assert checkpoint.dirpath.endswith(f"checkpoints/{config.removesuffix('.yaml')}")


def _tiny_sam():
    from lit_gradcam.segmenters.sam_models import build_sam_tiny

    return build_sam_tiny()


def test_the_sam_sweep_keeps_the_rows_and_swaps_the_segmenter() -> None:
    grabcut = _one(_cli("quickstart.yaml", "sweep.yaml"), SegmentationEvaluation).pipeline
    sam = _one(
        _cli("quickstart.yaml", "sweep.yaml", "sweep_sam.yaml"), SegmentationEvaluation
    ).pipeline
    assert [s.name for s in sam.strategies] == [s.name for s in grabcut.strategies]
    assert sam.cam == grabcut.cam
    ((segmenter),) = sam.segmenters
    assert isinstance(segmenter, SamSegmenter) and segmenter.model_type == "sam_tiny"


#: Each shipped config with the configs it layers over, as its header says to run it.
LAYERED = {
    "from_scratch.yaml": ("quickstart.yaml", "from_scratch.yaml"),
    "multi_object.yaml": ("quickstart.yaml", "multi_object.yaml"),
    "sweep_objects.yaml": ("quickstart.yaml", "multi_object.yaml", "sweep_objects.yaml"),
    "sweep_class_map_cam.yaml": (
        "quickstart.yaml",
        "multi_object.yaml",
        "sweep_class_map_cam.yaml",
    ),
    "sweep_object_split.yaml": (
        "quickstart.yaml",
        "multi_object.yaml",
        "sweep_object_split.yaml",
    ),
    "with_sam_tiny.yaml": ("quickstart.yaml", "with_sam_tiny.yaml"),
    "with_sam2.yaml": ("quickstart.yaml", "with_sam2.yaml"),
    "sweep.yaml": ("quickstart.yaml", "sweep.yaml"),
    "sweep_sam.yaml": ("quickstart.yaml", "sweep.yaml", "sweep_sam.yaml"),
}


class _BuildOnly(LitGradCamCLI):
    """The CLI up to the point where it would run the subcommand: every class built."""

    def _run_subcommand(self, subcommand: str) -> None:
        self.built_for = subcommand


@pytest.mark.parametrize("subcommand", ["fit", "validate", "test", "predict"])
@pytest.mark.parametrize("config", sorted(p.name for p in CONFIGS.glob("*.yaml")))
def test_every_shipped_config_builds_its_classes_for_every_subcommand(
    config: str, subcommand: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    official = default_cache_dir() / SAM_CHECKPOINTS["vit_b"].filename
    if config == "sam_vit_b_finetune.yaml" and not official.is_file():
        # SamTuner loads the official vit_b weights when built: offline, a small SAM stands in
        from lit_gradcam.sam_training import tuner

        monkeypatch.setattr(tuner, "build_sam", lambda *args, **kwargs: _tiny_sam())
    args = [a for name in LAYERED.get(config, (config,)) for a in ("--config", str(CONFIGS / name))]
    cli = _BuildOnly(
        L.LightningModule,
        L.LightningDataModule,
        subclass_mode_model=True,
        subclass_mode_data=True,
        trainer_defaults={"inference_mode": False},
        save_config_callback=None,
        args=[subcommand, *args],
    )
    assert cli.built_for == subcommand
    assert isinstance(cli.model, L.LightningModule) and isinstance(cli.trainer, L.Trainer)
    assert isinstance(cli.datamodule, L.LightningDataModule)


def _epoch_length(cli: LitGradCamCLI) -> int:
    """Optimizer steps in one epoch of the config's training split."""
    hp = cli.datamodule.hparams
    return -(-hp.train_size // hp.batch_size)


@pytest.mark.parametrize("config", sorted(p.name for p in CONFIGS.glob("*.yaml")))
def test_a_config_that_names_its_epochs_runs_all_of_them(config: str) -> None:
    """Where a config counts its run in epochs, no step limit (base.yaml's) ends it sooner."""
    layered = LAYERED.get(config, (config,))
    text = (CONFIGS / config).read_text()
    if "max_epochs:" not in text or not hasattr(_cli(*layered).datamodule.hparams, "train_size"):
        pytest.skip("counts its run in steps")
    cli = _cli(*layered)
    epochs = cli.trainer.max_epochs
    steps = cli.trainer.max_steps
    assert steps == -1 or steps >= epochs * _epoch_length(cli), (steps, epochs)


def test_from_scratch_keeps_checkpoints_of_its_own() -> None:
    """Layered over the quick start, it must not overwrite the quick start's last.ckpt."""
    scratch = _cli("quickstart.yaml", "from_scratch.yaml").trainer.checkpoint_callback.dirpath
    quick = _cli("quickstart.yaml").trainer.checkpoint_callback.dirpath
    assert Path(scratch).name == "from_scratch" and Path(scratch) != Path(quick)
