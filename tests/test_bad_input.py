"""Bad input through the real command line, one row per case: each gets one `error:` message
naming the argument or file and what was expected, no traceback, and no file that existed
before the run is changed. The next case is one more row of `CASES`."""

from __future__ import annotations

import os
import stat
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
import torch
import torchvision

from lit_gradcam.classifier.shapes_weights import shapes_weights_path
from lit_gradcam.cli import cli_main, main

Setup = Callable[[Path, pytest.MonkeyPatch], None]


@dataclass(frozen=True)
class Case:
    """One bad input: the command (`{tmp}` and `{ckpt}` filled in), what to prepare first, and a
    piece of the message the user must read (`{tmp}` filled in)."""

    id: str
    command: str
    message: str
    prepare: Setup | None = None
    needs_write_protection: bool = False
    needs_no_gpu: bool = False


def _tiny(tmp: Path) -> list[str]:
    return [
        "--data.root", str(tmp / "shapes"),
        "--data.train_size", "10", "--data.val_size", "5", "--data.test_size", "5",
        "--data.batch_size", "5", "--data.eval_batch_size", "5",
        "--checkpoint.dirpath", str(tmp / "ckpt"),
        "--trainer.default_root_dir", str(tmp / "logs"),
        "--trainer.enable_progress_bar", "false",
        "--trainer.max_steps", "1",
    ]  # fmt: skip


def _file(name: str, content: bytes) -> Setup:
    def prepare(tmp: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        (tmp / name).write_bytes(content)

    return prepare


def _config(name: str, text: str) -> Setup:
    return _file(name, text.encode())


def _torch_home(
    content: Callable[[Path], None] | None = None, read_only: bool = False, a_file: bool = False
) -> Setup:
    """TORCH_HOME in the test's folder, its cached shapes weights written by `content`; or
    read-only, or a file."""

    def prepare(tmp: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        home = tmp / "torch_home"
        monkeypatch.setenv("TORCH_HOME", str(home))
        if a_file:
            home.write_text("a file, not a folder\n")
            return
        home.mkdir()
        if content is not None:
            path = shapes_weights_path("resnet18")
            path.parent.mkdir(parents=True)
            content(path)
        if read_only:
            home.chmod(stat.S_IRUSR | stat.S_IXUSR)

    return prepare


def _sam_cache(read_only: bool) -> Setup:
    """The SAM cache in a read-only folder, or under a file (which no user, root included, can
    create a folder in)."""

    def prepare(tmp: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        cache = tmp / "sam_cache"
        if read_only:
            cache.mkdir()
            cache.chmod(stat.S_IRUSR | stat.S_IXUSR)
        else:
            cache.write_text("a file, not a folder\n")
        monkeypatch.setenv("LIT_GRADCAM_CACHE", str(cache / "checkpoints"))

    return prepare


#: A method segmenting with the official SAM vit_b, fetched into the cache on first use.
OFFICIAL_SAM = (
    "[{{class_path: lit_gradcam.segmenters.sam.SamSegmenter, init_args: {{model_type: vit_b}}}}]"
)

#: A file of the user's, named where a folder is expected.
NOTES = _file("notes.txt", b"my notes\n")

DUPLICATE_STRATEGIES = """
method:
  strategies:
    - class_path: lit_gradcam.prompts.strategies.CenterPoint
    - class_path: lit_gradcam.prompts.strategies.CenterPoint
"""

CASES = [
    Case(
        "ckpt_path best",
        "test --ckpt_path best",
        "--ckpt_path best: Lightning knows the best checkpoint only inside the `fit` run",
    ),
    Case(
        "ckpt_path missing file",
        "test --ckpt_path {tmp}/nothing.ckpt",
        "nothing.ckpt: no such checkpoint file",
    ),
    Case(
        "ckpt_path truncated",
        "test --ckpt_path {tmp}/cut.ckpt",
        "cut.ckpt: not a readable PyTorch checkpoint",
        _file("cut.ckpt", b"PK\x03\x04 cut short"),
    ),
    Case(
        "ckpt_path a weights file",
        "test --ckpt_path {tmp}/sam.pth",
        "sam.pth: a PyTorch file but not a Lightning checkpoint",
        lambda tmp, _: torch.save(torchvision.models.resnet18().state_dict(), tmp / "sam.pth"),
    ),
    Case(
        "ckpt_path of another model class",
        "test --ckpt_path {ckpt} --model lit_gradcam.sam_training.SamTuner",
        "a checkpoint of lit_gradcam.classifier.ShapeClassifier, but the config's model is "
        "lit_gradcam.sam_training.SamTuner",
    ),
    Case(
        "ckpt_path url",
        "test --ckpt_path https://example.invalid/a.ckpt",
        "remote checkpoints are not loaded",
    ),
    Case(
        "model.weights typo",
        "fit --model.weights IMAGENET1K_V9",
        "model.weights: 'IMAGENET1K_V9' is not a weight of resnet18",
    ),
    Case("model.arch typo", "fit --model.arch resnet19", "model.arch must be one of"),
    Case(
        "no-shape quantile out of range",
        "fit --no_shape.quantile 1.5",
        "no_shape.quantile must be in [0, 1), got 1.5",
    ),
    Case(
        "predict_strategy unknown",
        "fit --method.predict_strategy CentrePoint",
        "method.predict_strategy 'CentrePoint' is not one of the method's strategies",
    ),
    Case(
        "predict_strategy oracle",
        "fit --method.predict_strategy GroundTruthPoint",
        "method.predict_strategy 'GroundTruthPoint' reads the ground truth",
    ),
    Case(
        "duplicate strategy names",
        "fit --config {tmp}/twice.yaml",
        "strategies need unique names (set `name:`), repeated: ['CenterPoint']",
        _config("twice.yaml", DUPLICATE_STRATEGIES),
    ),
    Case(
        "cam layer typo",
        "fit --method.cam.layers [layer2.9]",
        "method cam layers ['layer2.9']: no layer 'layer2.9' in ResNet",
    ),
    Case(
        "cam layer a removed stage",
        "fit --model.stages 3 --method.cam.layers [layer4]",
        "method cam layers ['layer4']: layer 'layer4' is removed from this ResNet",
    ),
    Case("model.stages out of range", "fit --model.stages 5", "model.stages must be 1 to 4, got 5"),
    Case(
        "sam model_type unknown",
        "test --ckpt_path {ckpt} --method.segmenters "
        "[{{class_path: lit_gradcam.segmenters.sam.SamSegmenter, "
        "init_args: {{model_type: vit_q, checkpoint: {tmp}/sam.pth}}}}]",
        "SAM model_type 'vit_q' is unknown",
    ),
    Case(
        "sam cache read-only",
        "test --ckpt_path {ckpt} --method.segmenters " + OFFICIAL_SAM,
        "cannot write to the checkpoint cache",
        _sam_cache(read_only=True),
        needs_write_protection=True,
    ),
    Case(
        "sam cache under a file",
        "test --ckpt_path {ckpt} --method.segmenters " + OFFICIAL_SAM,
        "cannot write to the checkpoint cache",
        _sam_cache(read_only=False),
    ),
    Case(
        "shapes weights corrupt",
        "fit --model.weights shapes",
        "cannot be read",
        _torch_home(lambda path: path.write_bytes(b"PK\x03\x04 not weights")),
    ),
    Case(
        "shapes weights of another model",
        "fit --model.weights shapes",
        "does not fit a resnet18",
        _torch_home(lambda path: torch.save(torchvision.models.resnet50().state_dict(), path)),
    ),
    Case(
        "torch home read-only",
        "fit --model.weights shapes",
        "cannot write the weights cache",
        _torch_home(read_only=True),
        needs_write_protection=True,
    ),
    Case(
        "torch home a file",
        "fit --model.weights shapes",
        "cannot write the weights cache",
        _torch_home(a_file=True),
    ),
    Case(
        "config not yaml",
        "fit --config {tmp}/broken.yaml",
        "broken.yaml: not valid YAML (line 3, column 1)",
        _config("broken.yaml", "trainer:\n  max_steps: [1\n"),
    ),
    Case("data.batch_size zero", "fit --data.batch_size 0", "data.batch_size must be >= 1, got 0"),
    Case("data.val_size negative", "fit --data.val_size -5", "data.val_size must be >= 0"),
    Case(
        "data.image_size zero",
        "predict --ckpt_path {ckpt} --data.predict_dir {tmp} --data.image_size [0,0]",
        "data.image_size must be (height, width) of at least 1 pixel each",
    ),
    Case("model.lr negative", "fit --model.lr -1", "model.lr must be > 0"),
    Case("model.label_smoothing one", "fit --model.label_smoothing 1", "label_smoothing in [0, 1)"),
    Case(
        "trainer.max_steps zero",
        "fit --trainer.max_steps 0",
        "trainer.max_steps must be a positive number of steps",
    ),
    Case(
        "accelerator this machine lacks",
        "fit --trainer.accelerator gpu",
        "No supported gpu backend found!",
        needs_no_gpu=True,
    ),
    Case(
        "checkpoint.dirpath a file",
        "fit --checkpoint.dirpath {tmp}/notes.txt",
        "notes.txt is a file; expected a folder (created if absent)",
        NOTES,
    ),
    Case(
        "default_root_dir under a file",
        "fit --trainer.default_root_dir {tmp}/notes.txt/runs",
        "--trainer.default_root_dir",
        NOTES,
    ),
    Case(
        "data.root under a file",
        "fit --data.root {tmp}/notes.txt/shapes",
        "data.root {tmp}/notes.txt/shapes lies under {tmp}/notes.txt, which is a file",
        NOTES,
    ),
    Case(
        "data.root a file",
        "fit --data.root {tmp}/notes.txt",
        "notes.txt is a file; expected a dataset folder",
        NOTES,
    ),
]


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A classifier checkpoint after one training step (the test-stage rows need one)."""
    tmp = tmp_path_factory.mktemp("bad_input_ckpt")
    cli_main(["fit", *_tiny(tmp), "--trainer.logger", "false"])
    return tmp / "ckpt" / "last.ckpt"


def _files(folder: Path) -> dict[Path, bytes]:
    return {path: path.read_bytes() for path in sorted(folder.rglob("*")) if path.is_file()}


@pytest.mark.parametrize("case", CASES, ids=[case.id for case in CASES])
def test_bad_input_is_one_message(
    case: Case,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    checkpoint: Path,
) -> None:
    if case.needs_write_protection and os.geteuid() == 0:
        pytest.skip("root writes into read-only folders")
    if case.needs_no_gpu and torch.cuda.is_available():
        pytest.skip("this machine has the GPU the row asks for")
    if case.prepare is not None:
        case.prepare(tmp_path, monkeypatch)
    before = _files(tmp_path)
    subcommand, *rest = case.command.format(tmp=tmp_path, ckpt=checkpoint).split(" ", 1)
    args = [subcommand, *_tiny(tmp_path), *_split(rest)]
    try:
        with pytest.raises(SystemExit) as exit_info:
            main(args)
    finally:
        for folder in tmp_path.rglob("*"):  # let pytest clean up what was write-protected
            if folder.is_dir():
                folder.chmod(stat.S_IRWXU)
    code = exit_info.value.code
    message = code if isinstance(code, str) else capsys.readouterr().err
    assert code not in (None, 0)
    assert case.message.format(tmp=tmp_path) in message
    assert "Traceback" not in message
    assert {path: data for path, data in _files(tmp_path).items() if path in before} == before


def _split(rest: list[str]) -> list[str]:
    """The argument words of a row: the flow-style YAML value of `--method.segmenters` is kept
    whole."""
    if not rest:
        return []
    words, out = rest[0].split(" "), []
    for word in words:
        if out and out[-1].count("[") > out[-1].count("]"):
            out[-1] += " " + word
        else:
            out.append(word)
    return out


def test_a_checkpoint_with_hyper_parameters_since_removed_predicts_and_says_so(
    tmp_path: Path, checkpoint: Path
) -> None:
    """A checkpoint of an earlier version, whose hyper-parameters name a setting the classifier
    no longer takes, predicts through the CLI (that setting dropped, and named in a warning)
    instead of failing in the model's constructor."""
    saved = torch.load(checkpoint, map_location="cpu", weights_only=False)
    saved["hyper_parameters"]["no_shape_temperature"] = 4.0
    old = tmp_path / "old.ckpt"
    torch.save(saved, old)
    images = tmp_path / "images"
    images.mkdir()
    torchvision.io.write_png(torch.zeros(3, 48, 64, dtype=torch.uint8), str(images / "a.png"))
    out = tmp_path / "out"
    with pytest.warns(UserWarning, match=r"\['no_shape_temperature'\] are not ShapeClassifier's"):
        cli_main(
            [
                "predict", *_tiny(tmp_path), "--trainer.logger", "false",
                "--ckpt_path", str(old),
                "--data.predict_dir", str(images), "--output.output_dir", str(out),
            ]
        )  # fmt: skip
    assert (out / "a_mask.png").is_file()
    assert "a.png" in (out / "predictions.csv").read_text()
