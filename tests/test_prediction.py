"""`python main.py predict`: the method's predict strategy, masks at each image's own size, a CSV
that matches, bad files reported, finished outputs never overwritten by accident, and errors
printed as one message."""

import csv
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import lightning as L
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

from lit_gradcam.classifier import ShapeClassifier
from lit_gradcam.classifier.presence import ShapePresence
from lit_gradcam.cli import cli_main, main
from lit_gradcam.data import CLASSES
from lit_gradcam.data.datamodule import ShapesDataModule
from lit_gradcam.data.dataset import DatasetError
from lit_gradcam.data.image_folder import ImageFolder
from lit_gradcam.prediction.files import (
    MANIFEST_NAME,
    OutputDirError,
    OutputExistsError,
    OutputFolder,
    spreadsheet_safe,
)
from lit_gradcam.prediction.writer import MaskWriter

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def trained(tmp_path_factory, tiny_root: Path) -> dict[str, Path]:
    """A briefly trained checkpoint and a folder of images at two sizes plus a corrupt one."""
    tmp = tmp_path_factory.mktemp("predict")
    data = Path(shutil.copytree(tiny_root, tmp / "shapes"))
    cli_main(
        ["fit", *_data_args(tmp), "--trainer.max_steps", "2", "--trainer.val_check_interval", "2"]
    )
    folder = tmp / "mine"
    folder.mkdir()
    sources = sorted((data / "images" / "test").glob("*.png"))[:4]
    for i, source in enumerate(sources):
        image = Image.open(source)
        if i % 2:  # twice the size, as a JPEG
            image.resize((128, 96), Image.NEAREST).save(folder / f"big_{i}.jpg", quality=95)
        else:
            image.save(folder / f"small_{i}.png")
    (folder / "broken.png").write_bytes(sources[0].read_bytes()[:100])
    (folder / "notes.txt").write_text("not an image")
    return {"tmp": tmp, "folder": folder}


def _data_args(tmp: Path) -> list[str]:
    return [
        "--data.root", str(tmp / "shapes"),
        "--data.train_size", "20", "--data.val_size", "10", "--data.test_size", "10",
        "--data.batch_size", "10",
        "--checkpoint.dirpath", str(tmp / "ckpt"),
        "--trainer.default_root_dir", str(tmp / "logs"),
        "--trainer.enable_progress_bar", "false",
        "--trainer.precision", "32-true",  # the by-hand checks compute in float32
    ]  # fmt: skip


def _predict(trained: dict[str, Path], out: Path, *extra: str, folder: Path | None = None) -> None:
    cli_main(
        [
            "predict", *_data_args(trained["tmp"]),
            "--data.predict_dir", str(folder or trained["folder"]),
            "--data.eval_batch_size", "3",
            "--output.output_dir", str(out),
            "--ckpt_path", "last",
            *extra,
        ]
    )  # fmt: skip


def _by_hand_input(image_file: Path, size: tuple[int, int] = (48, 64)) -> torch.Tensor:
    """One file as the classifier reads it: resized to `size` (the training size), normalised."""
    rgb = np.asarray(Image.open(image_file).convert("RGB"), dtype=np.float32) / 255
    image = torch.from_numpy(rgb).permute(2, 0, 1)[None]
    if image.shape[-2:] != size:
        image = F.interpolate(image, size, mode="bilinear", antialias=True)
    mean = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
    std = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
    return (image.clamp(0, 1) - mean) / std


def _logits_by_hand(
    checkpoint: Path, image_file: Path, size: tuple[int, int] = (48, 64)
) -> torch.Tensor:
    """The checkpoint's logits for one file, resized to `size` (the training size)."""
    model = ShapeClassifier.load_from_checkpoint(checkpoint, map_location="cpu").eval()
    with torch.no_grad():
        return model(_by_hand_input(image_file, size))[0]


def _no_shape_by_hand(checkpoint: Path, image_file: Path) -> str:
    """The no-shape flag from the checkpoint's saved flag state (the `NoShapeFlag` callback's)
    and the presence score's formula: the presence net's pixel probabilities, the mean of the
    most confident ones."""
    saved = torch.load(checkpoint, map_location="cpu", weights_only=True)
    state = saved["callbacks"]["NoShapeFlag"]
    if state["threshold"] == float("-inf"):
        return ""  # never validated: no calibrated flag
    net = ShapePresence()
    net.load_state_dict(state["net"])
    with torch.no_grad():
        logits = net.eval()(_by_hand_input(image_file))
    ranked = torch.sigmoid(logits).flatten().sort(descending=True).values
    score = ranked[: net.top_pixels].mean()
    return "true" if score < state["threshold"] else "false"


def test_predict_writes_masks_overlays_and_csv(trained: dict[str, Path]) -> None:
    out = trained["tmp"] / "out"
    with pytest.warns(UserWarning, match="broken.png"):
        _predict(trained, out)
    rows = list(csv.DictReader((out / "predictions.csv").open()))
    checkpoint = trained["tmp"] / "ckpt" / "last.ckpt"
    assert [r["file"] for r in rows] == [
        "big_1.jpg", "big_3.jpg", "broken.png", "notes.txt", "small_0.png", "small_2.png"
    ]  # fmt: skip
    for row in rows:
        if row["file"] == "broken.png":
            assert "truncated" in row["error"] and row["mask"] == ""
            continue
        if row["file"] == "notes.txt":
            assert row["error"].startswith("not an image this tool reads (.txt)")
            continue
        expected = (96, 128) if row["file"].startswith("big") else (48, 64)
        mask = np.array(Image.open(out / row["mask"]))
        overlay = Image.open(out / row["overlay"])
        assert mask.shape == expected and set(np.unique(mask)) <= {0, 255}
        assert overlay.size == expected[::-1] and overlay.mode == "RGB"
        logits = _logits_by_hand(checkpoint, trained["folder"] / row["file"])
        probabilities = logits.softmax(-1)
        assert row["predicted_class"] == CLASSES[int(probabilities.argmax())]
        assert float(row["probability"]) == pytest.approx(probabilities.max().item(), abs=1e-4)
        assert row["no_shape"] == _no_shape_by_hand(checkpoint, trained["folder"] / row["file"])
        assert row["no_shape"] != ""
        x, y, label = row["points"].split(";")[0].split()
        assert 0 <= float(x) < expected[1] and 0 <= float(y) < expected[0] and label == "1"
    assert not (out / "broken_mask.png").exists()
    manifest = json.loads((out / MANIFEST_NAME).read_text())
    written = {p.name for p in out.iterdir()} - {MANIFEST_NAME}
    assert set(manifest["files"]) == written and len(written) == 2 * 4 + 1  # no staging left


def test_predict_runs_the_named_strategy_at_each_image_size(trained: dict[str, Path]) -> None:
    """`--method.predict_strategy CenterPoint`: one point at the centre of each image's own
    pixels, big or small."""
    out = trained["tmp"] / "centre"
    with pytest.warns(UserWarning, match="broken.png"):
        _predict(trained, out, "--method.predict_strategy", "CenterPoint")
    rows = [row for row in csv.DictReader((out / "predictions.csv").open()) if row["mask"]]
    assert len(rows) == 4
    for row in rows:
        height, width = (96, 128) if row["file"].startswith("big") else (48, 64)
        assert row["points"] == f"{width // 2:.1f} {height // 2:.1f} 1", row["file"]


def _sam_method(tmp: Path, checkpoint: Path) -> str:
    """A config file whose method cuts with SAM vit_b from `checkpoint`."""
    config = tmp / f"sam_{checkpoint.parent.name}.yaml"
    config.write_text(
        "method:\n  segmenters:\n    - class_path: lit_gradcam.segmenters.sam.SamSegmenter\n"
        f"      init_args: {{model_type: vit_b, checkpoint: {checkpoint}}}\n"
    )
    return str(config)


@pytest.mark.parametrize("problem", ["folder is a file", "SAM file corrupt", "SAM file missing"])
def test_user_errors_are_one_message_naming_the_file(
    trained: dict[str, Path], capsys, problem: str
) -> None:
    tmp = trained["tmp"] / problem.replace(" ", "_")
    tmp.mkdir()
    folder, extra = trained["folder"], []
    if problem == "folder is a file":
        folder = named = trained["folder"] / "notes.txt"
    else:
        named = (
            tmp
            / ("official" if problem == "SAM file corrupt" else "nowhere")
            / ("sam_vit_b_01ec64.pth")
        )
        if problem == "SAM file corrupt":
            named.parent.mkdir()
            named.write_bytes(b"not the official checkpoint")
        extra = ["--config", _sam_method(tmp, named)]
    with pytest.raises(SystemExit) as exit_info:
        main(
            [
                "predict", *extra, *_data_args(trained["tmp"]),
                "--data.predict_dir", str(folder),
                "--output.output_dir", str(tmp / "out"),
                "--ckpt_path", "last",
            ]
        )  # fmt: skip
    assert exit_info.value.code not in (None, 0)
    message = str(exit_info.value.code)
    assert message.startswith("error: ") and str(named) in message
    assert "Traceback" not in capsys.readouterr().err
    assert not (tmp / "out").exists()


def test_an_untrained_sam_tiny_says_how_to_train_one(trained: dict[str, Path]) -> None:
    """sam_tiny has no official file: the message names the config that trains it."""
    config = trained["tmp"] / "sam_tiny_method.yaml"
    config.write_text(
        "method:\n  segmenters:\n    - class_path: lit_gradcam.segmenters.sam.SamSegmenter\n"
        "      init_args: {model_type: sam_tiny}\n"
    )
    with pytest.raises(SystemExit) as exit_info:
        main(
            [
                "predict", "--config", str(config), *_data_args(trained["tmp"]),
                "--data.predict_dir", str(trained["folder"]),
                "--output.output_dir", str(trained["tmp"] / "untrained_sam"),
                "--ckpt_path", "last",
            ]
        )  # fmt: skip
    message = str(exit_info.value.code)
    assert message.startswith("error: ") and "configs/sam_tiny.yaml" in message
    assert not (trained["tmp"] / "untrained_sam").exists()


def test_existing_outputs_are_kept_unless_overwrite(trained: dict[str, Path]) -> None:
    out = trained["tmp"] / "again"
    with pytest.warns(UserWarning):
        _predict(trained, out)
    before = (out / "predictions.csv").read_bytes()
    stamp = (out / "small_0_mask.png").stat().st_mtime_ns
    with pytest.raises(FileExistsError, match="overwrite"):
        _predict(trained, out)
    assert (out / "predictions.csv").read_bytes() == before
    assert (out / "small_0_mask.png").stat().st_mtime_ns == stamp
    with pytest.warns(UserWarning):
        _predict(trained, out, "--output.overwrite", "true")
    assert (out / "predictions.csv").read_bytes() == before  # deterministic rerun


def test_predict_without_a_folder_is_a_clear_error(trained: dict[str, Path]) -> None:
    with pytest.raises(ValueError, match="--data.predict_dir"):
        cli_main(
            ["predict", *_data_args(trained["tmp"]), "--ckpt_path", "last",
             "--output.output_dir", str(trained["tmp"] / "none")]
        )  # fmt: skip


def test_predicting_into_the_folder_being_predicted_is_refused(trained: dict[str, Path]) -> None:
    """The masks would become the next run's inputs: one message, and no file written."""
    folder = trained["folder"]
    before = sorted(p.name for p in folder.iterdir())
    with pytest.raises(SystemExit) as exit_info:
        main(
            ["predict", *_data_args(trained["tmp"]), "--ckpt_path", "last",
             "--data.predict_dir", str(folder), "--output.output_dir", str(folder)]
        )  # fmt: skip
    assert "is the folder being predicted" in str(exit_info.value.code)  # main's one message
    assert sorted(p.name for p in folder.iterdir()) == before


@pytest.mark.slow
def test_two_ddp_processes_write_the_same_files_as_one(trained: dict[str, Path]) -> None:
    single, double = trained["tmp"] / "single", trained["tmp"] / "double"
    with pytest.warns(UserWarning):
        _predict(trained, single)
    command = [
        sys.executable, "main.py", "predict", *_data_args(trained["tmp"]),
        "--data.predict_dir", str(trained["folder"]),
        "--data.eval_batch_size", "2",
        "--output.output_dir", str(double),
        "--trainer.accelerator", "cpu", "--trainer.devices", "2", "--trainer.strategy", "ddp",
        "--ckpt_path", "last",
    ]  # fmt: skip
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    assert sorted(p.name for p in double.iterdir()) == sorted(p.name for p in single.iterdir())
    assert (double / "predictions.csv").read_text() == (single / "predictions.csv").read_text()
    for mask in single.glob("*_mask.png"):
        assert (double / mask.name).read_bytes() == mask.read_bytes()


def test_predict_cuts_with_a_trained_sam_tiny_checkpoint(trained: dict[str, Path]) -> None:
    """A `SamTuner` checkpoint (here random weights) as the method's segmenter: each written
    mask is what segment_anything's own `SamPredictor` cuts from the CSV's point on the image
    at its own size (best of three masks for one point, as SAM advises)."""
    from segment_anything import SamPredictor

    from lit_gradcam.segmenters.sam_models import build_sam_tiny

    torch.manual_seed(3)
    sam = build_sam_tiny()
    checkpoint = trained["tmp"] / "sam_tiny.ckpt"
    torch.save({"state_dict": {f"sam.{k}": v for k, v in sam.state_dict().items()}}, checkpoint)
    config = trained["tmp"] / "sam_tiny_trained.yaml"
    config.write_text(
        "method:\n  segmenters:\n    - class_path: lit_gradcam.segmenters.sam.SamSegmenter\n"
        f"      init_args: {{model_type: sam_tiny, checkpoint: {checkpoint}}}\n"
    )
    out = trained["tmp"] / "sam_out"
    with pytest.warns(UserWarning, match="broken.png"):
        _predict(trained, out, "--config", str(config))
    predictor = SamPredictor(sam)
    rows = [r for r in csv.DictReader((out / "predictions.csv").open()) if r["mask"]]
    assert len(rows) == 4
    for row in rows:
        predictor.set_image(np.asarray(Image.open(trained["folder"] / row["file"]).convert("RGB")))
        x, y, label = (float(v) for v in row["points"].split(";")[0].split())
        masks, scores, _ = predictor.predict(np.array([[x, y]]), np.array([label]))
        expected = masks[scores.argmax()]
        written = np.array(Image.open(out / row["mask"])) > 0
        assert written.shape == expected.shape
        assert (written != expected).mean() < 0.002, row["file"]


def _snapshot(folder: Path) -> dict[str, bytes | str]:
    """Every entry of `folder`, hidden ones too, with its bytes ("folder" for a folder)."""
    return {p.name: p.read_bytes() if p.is_file() else "folder" for p in folder.iterdir()}


@pytest.mark.parametrize("overwrite", ["false", "true"])
def test_a_file_of_the_users_with_an_output_name_is_never_replaced(
    trained: dict[str, Path], tmp_path: Path, overwrite: str
) -> None:
    """No manifest lists it, so it is the user's: refused (even with overwrite) before any
    file is written, as one message."""
    out = tmp_path / "out"
    out.mkdir()
    (out / "small_0_mask.png").write_bytes(b"the user's own mask")
    (out / "mine.txt").write_text("the user's notes")
    before = _snapshot(out)
    with pytest.raises(SystemExit) as exit_info:
        main(
            ["predict", *_data_args(trained["tmp"]), "--ckpt_path", "last",
             "--data.predict_dir", str(trained["folder"]), "--output.output_dir", str(out),
             "--output.overwrite", overwrite]
        )  # fmt: skip
    message = str(exit_info.value.code)
    assert message.startswith("error: ") and "\n" not in message
    assert f"{out / 'small_0_mask.png'} was not written by lit-gradcam predict" in message
    assert _snapshot(out) == before


def test_overwrite_replaces_only_the_files_the_last_run_listed(
    trained: dict[str, Path], tmp_path: Path
) -> None:
    """The last run's files that this run does not write go; the user's files stay."""
    out, few = tmp_path / "out", tmp_path / "few"
    with pytest.warns(UserWarning, match="broken.png"):
        _predict(trained, out)
    (out / "mine.txt").write_text("the user's notes")
    (out / "other_mask.png").write_bytes(b"the user's own mask")
    few.mkdir()
    shutil.copy(trained["folder"] / "small_0.png", few / "small_0.png")
    _predict(trained, out, "--output.overwrite", "true", folder=few)
    written = {"small_0_mask.png", "small_0_overlay.png", "predictions.csv"}
    assert {p.name for p in out.iterdir()} == {
        *written,
        MANIFEST_NAME,
        "mine.txt",
        "other_mask.png",
    }
    assert (out / "mine.txt").read_text() == "the user's notes"
    assert (out / "other_mask.png").read_bytes() == b"the user's own mask"
    assert json.loads((out / MANIFEST_NAME).read_text())["files"] == sorted(written)
    assert [r["file"] for r in csv.DictReader((out / "predictions.csv").open())] == ["small_0.png"]


class _FailsOnSecondBatch(L.LightningModule):
    """The trained classifier, raising in its second predict batch once the writer has staged
    the first batch's files (`staged` records them)."""

    def __init__(self, classifier: ShapeClassifier, output_dir: Path) -> None:
        super().__init__()
        self.model, self.output_dir = classifier.model, output_dir
        self.class_names = classifier.class_names
        self.staged: list[str] = []

    def predict_step(self, batch: dict, batch_idx: int) -> torch.Tensor:
        if batch_idx == 1:
            staged = self.output_dir.glob(".predictions-*/*")
            self.staged = sorted(p.name for p in staged if p.name != "run.lock")  # the run's lock
            raise RuntimeError("the model broke")
        return self.model(batch["image"]).softmax(-1)


@pytest.mark.parametrize("previous", ["last run's results", "no folder yet"])
def test_a_failing_run_leaves_the_output_folder_as_it_was(
    trained: dict[str, Path], tmp_path: Path, previous: str, make_trainer
) -> None:
    out = tmp_path / "out"
    if previous == "last run's results":
        with pytest.warns(UserWarning, match="broken.png"):
            _predict(trained, out)
        before = _snapshot(out)
    checkpoint = trained["tmp"] / "ckpt" / "last.ckpt"
    classifier = ShapeClassifier.load_from_checkpoint(checkpoint, map_location="cpu")
    model = _FailsOnSecondBatch(classifier, out)
    data = ShapesDataModule(
        root=str(trained["tmp"] / "shapes"), predict_dir=str(trained["folder"]), eval_batch_size=2
    )
    trainer = make_trainer(inference_mode=False, callbacks=[MaskWriter(str(out), overwrite=True)])
    with pytest.raises(RuntimeError, match="the model broke"):
        trainer.predict(model, datamodule=data, return_predictions=False)
    assert model.staged == [
        "big_1_mask.png",
        "big_1_overlay.png",
        "big_3_mask.png",
        "big_3_overlay.png",
    ]
    if previous == "last run's results":
        assert _snapshot(out) == before
    else:
        assert not out.exists()


@pytest.mark.parametrize("problem", ["a file", "a read-only folder", "in a read-only folder"])
def test_an_output_dir_that_cannot_be_written_is_refused_before_the_run(
    trained: dict[str, Path], tmp_path: Path, problem: str
) -> None:
    if problem != "a file" and os.geteuid() == 0:
        pytest.skip("root writes into read-only folders")
    locked = tmp_path / "locked"
    locked.mkdir()
    (locked / "mine.txt").write_text("the user's notes")
    out = {"a file": locked / "mine.txt", "a read-only folder": locked}.get(problem, locked / "out")
    if problem != "a file":
        locked.chmod(0o500)
    try:
        with pytest.raises(OutputDirError, match=re.escape(str(out))) as error:
            _predict(trained, out)
    finally:
        locked.chmod(0o700)
    expected = {"a file": "is a file", "a read-only folder": "cannot be written"}
    assert expected.get(problem, "cannot be created") in str(error.value)
    assert _snapshot(locked) == {"mine.txt": b"the user's notes"}


def test_every_entry_of_the_folder_gets_a_row_and_its_own_output_names(
    trained: dict[str, Path], tmp_path: Path
) -> None:
    """a.png, a.jpg, a_png.png and A.png get four outputs (unique ignoring case too); WebP, BMP
    and TIFF are read; a name that reads as a formula is escaped in the CSV only; transparency
    has a note; what is not read (an empty file, text named .png included) is listed with why."""
    shapes = sorted((trained["tmp"] / "shapes" / "images" / "test").glob("*.png"))
    source = Image.open(shapes[0]).convert("RGB")
    sizes = {
        "a.png": (40, 52), "a.jpg": (44, 60), "a_png.png": (36, 48), "A.png": (50, 66),
        "w.webp": (30, 40), "b.bmp": (32, 42), "t.tif": (34, 46), "tt.tiff": (38, 50),
        "=cmd.png": (42, 56),
    }  # fmt: skip
    folder = tmp_path / "zoo"
    folder.mkdir()
    for name, (height, width) in sizes.items():
        options = {"lossless": True} if name.endswith(".webp") else {}
        source.resize((width, height), Image.NEAREST).save(folder / name, **options)
    see_through = source.convert("RGBA")
    see_through.putalpha(128)
    see_through.save(folder / "alpha.png")
    (folder / "notes.txt").write_text("not an image")
    (folder / "text.png").write_text("not an image either")
    (folder / "empty.png").write_bytes(b"")
    (folder / "sub").mkdir()
    (folder / "gone.png").symlink_to(folder / "missing.png")
    out = tmp_path / "out"
    with pytest.warns(UserWarning, match="3 entries"):
        _predict(trained, out, folder=folder)
    with (out / "predictions.csv").open(newline="") as handle:
        reader = csv.DictReader(handle)
        rows = {row["file"]: row for row in reader}
    assert reader.fieldnames[-2:] == ["note", "error"]
    assert set(rows) == {
        *(spreadsheet_safe(name) for name in sizes),
        "alpha.png",
        "notes.txt",
        "text.png",
        "empty.png",
        "sub",
        "gone.png",
    }
    clashing = ("a.png", "a.jpg", "a_png.png", "A.png")
    assert [rows[name]["mask"] for name in clashing] == [
        "a_png_3_mask.png", "a_jpg_mask.png", "a_png_mask.png", "A_png_2_mask.png"
    ]  # fmt: skip
    command = rows["'=cmd.png"]
    assert (command["mask"], command["overlay"]) == ("'=cmd_mask.png", "'=cmd_overlay.png")
    for name, size in sizes.items():
        row = rows[spreadsheet_safe(name)]
        mask = out / ("=cmd_mask.png" if name == "=cmd.png" else row["mask"])
        assert np.array(Image.open(mask)).shape == size, name  # each input's own mask
        assert (row["error"], row["note"]) == ("", ""), name
    assert "transparent" in rows["alpha.png"]["note"] and rows["alpha.png"]["mask"]
    assert rows["notes.txt"]["error"].startswith("not an image this tool reads (.txt); it reads")
    assert ".webp" in rows["notes.txt"]["error"] and rows["notes.txt"]["mask"] == ""
    assert rows["text.png"]["error"].endswith("no image format PIL reads matches its content")
    assert rows["empty.png"]["error"].endswith("the file is empty (0 bytes)")
    assert rows["gone.png"]["error"] == "a symbolic link to a missing file"
    assert rows["sub"]["error"].startswith("a folder")
    manifest = json.loads((out / MANIFEST_NAME).read_text())
    assert set(manifest["files"]) == {p.name for p in out.iterdir()} - {MANIFEST_NAME}
    assert len(manifest["files"]) == 2 * (len(sizes) + 1) + 1


def test_a_folder_without_an_image_names_what_it_holds(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("not an image")
    (tmp_path / "sub").mkdir()
    with pytest.raises(DatasetError, match="holds no image .*only notes.txt, sub"):
        ImageFolder(tmp_path)


def test_cells_that_a_spreadsheet_would_run_get_a_quote() -> None:
    for start in ("=", "+", "-", "@", "\t", "\r"):
        assert spreadsheet_safe(f"{start}x.png") == f"'{start}x.png"
    assert spreadsheet_safe("x=1.png") == "x=1.png" and spreadsheet_safe("") == ""


@pytest.mark.parametrize("files", [["../victim.txt"], "not a list", None])
def test_a_manifest_this_tool_did_not_write_is_refused(tmp_path: Path, files: object) -> None:
    """Overwrite removes only plain names inside output_dir that its own manifest lists."""
    out = tmp_path / "out"
    out.mkdir()
    victim = tmp_path / "victim.txt"
    victim.write_text("the user's")
    manifest = {"written_by": "lit-gradcam predict", "format": 1, "files": files}
    (out / MANIFEST_NAME).write_text(json.dumps(manifest) if files else "{not json")
    with pytest.raises(OutputExistsError, match="is not a manifest lit-gradcam predict wrote"):
        OutputFolder(out, overwrite=True).check(["predictions.csv"])
    assert victim.read_text() == "the user's"


def _resized_copy(source: Path, target: Path, size: tuple[int, int]) -> Path:
    """A copy of a dataset folder with every image and mask resized to (width, height)."""
    shutil.copytree(source, target)
    for png in target.glob("*/*/*.png"):
        Image.open(png).resize(size, Image.NEAREST).save(png)
    return target


def test_predict_and_test_run_at_the_size_the_checkpoint_was_trained_at(
    trained: dict[str, Path], capsys
) -> None:
    """A checkpoint trained on 56x40 images classifies predict's images at 56x40, and `test` on
    a 64x48 folder is refused with one message."""
    tmp = trained["tmp"]
    small = _resized_copy(tmp / "shapes", tmp / "shapes_56x40", (56, 40))
    args = [
        *_data_args(tmp), "--data.root", str(small), "--data.generate", "false",
        "--checkpoint.dirpath", str(tmp / "ckpt_56x40"),
    ]  # fmt: skip
    cli_main(["fit", *args, "--trainer.max_epochs", "1"])
    checkpoint = tmp / "ckpt_56x40" / "last.ckpt"
    out = tmp / "out_56x40"
    with pytest.warns(UserWarning, match="broken.png"):
        cli_main(
            [
                "predict", *args, "--data.predict_dir", str(trained["folder"]),
                "--output.output_dir", str(out), "--ckpt_path", str(checkpoint),
            ]
        )  # fmt: skip
    row = next(
        r for r in csv.DictReader((out / "predictions.csv").open()) if r["file"] == "small_0.png"
    )
    expected = _logits_by_hand(checkpoint, trained["folder"] / "small_0.png", (40, 56))
    assert float(row["probability"]) == pytest.approx(expected.softmax(-1).max().item(), abs=1e-4)
    with pytest.raises(SystemExit) as exit_info:
        main(["test", *args, "--data.root", str(tmp / "shapes"), "--ckpt_path", str(checkpoint)])
    assert "holds 48x64 images (height x width), the checkpoint was trained at 40x56" in str(
        exit_info.value.code
    )
