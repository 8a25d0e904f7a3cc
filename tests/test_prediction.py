"""`python main.py predict`: the method's predict strategy, masks at each image's own size, a CSV
that matches, bad files reported, finished outputs never overwritten by accident, and errors
printed as one message."""

import csv
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

from lit_gradcam.classifier import ShapeClassifier
from lit_gradcam.cli import cli_main, main
from lit_gradcam.data import CLASSES
from lit_gradcam.data.generate import generate_dataset

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> dict[str, Path]:
    """A briefly trained checkpoint and a folder of images at two sizes plus a corrupt one."""
    tmp = tmp_path_factory.mktemp("predict")
    data = tmp / "shapes"
    generate_dataset(data, {"train": 20, "val": 10, "test": 10}, progress=False)
    cli_main(["fit", *_data_args(tmp), "--trainer.max_epochs", "1"])
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


def _predict(trained: dict[str, Path], out: Path, *extra: str) -> None:
    cli_main(
        [
            "predict", *_data_args(trained["tmp"]),
            "--data.predict_dir", str(trained["folder"]),
            "--data.eval_batch_size", "3",
            "--output.output_dir", str(out),
            "--ckpt_path", "last",
            *extra,
        ]
    )  # fmt: skip


def _probabilities_by_hand(checkpoint: Path, image_file: Path) -> torch.Tensor:
    """The checkpoint's class probabilities for one file, resized to the training size."""
    model = ShapeClassifier.load_from_checkpoint(checkpoint, map_location="cpu").eval()
    rgb = np.asarray(Image.open(image_file).convert("RGB"), dtype=np.float32) / 255
    image = torch.from_numpy(rgb).permute(2, 0, 1)[None]
    if image.shape[-2:] != (48, 64):
        image = F.interpolate(image, (48, 64), mode="bilinear", antialias=True)
    mean = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
    std = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
    with torch.no_grad():
        return model((image.clamp(0, 1) - mean) / std).softmax(-1)[0]


def test_predict_writes_masks_overlays_and_csv(trained: dict[str, Path]) -> None:
    out = trained["tmp"] / "out"
    with pytest.warns(UserWarning, match="broken.png"):
        _predict(trained, out)
    rows = list(csv.DictReader((out / "predictions.csv").open()))
    checkpoint = trained["tmp"] / "ckpt" / "last.ckpt"
    assert [r["file"] for r in rows] == [
        "big_1.jpg", "big_3.jpg", "broken.png", "small_0.png", "small_2.png"
    ]  # fmt: skip
    for row in rows:
        if row["file"] == "broken.png":
            assert "truncated" in row["error"] and row["mask"] == ""
            continue
        expected = (96, 128) if row["file"].startswith("big") else (48, 64)
        mask = np.array(Image.open(out / row["mask"]))
        overlay = Image.open(out / row["overlay"])
        assert mask.shape == expected and set(np.unique(mask)) <= {0, 255}
        assert overlay.size == expected[::-1] and overlay.mode == "RGB"
        probabilities = _probabilities_by_hand(checkpoint, trained["folder"] / row["file"])
        assert row["predicted_class"] == CLASSES[int(probabilities.argmax())]
        assert float(row["probability"]) == pytest.approx(probabilities.max().item(), abs=1e-4)
        x, y, label = row["points"].split(";")[0].split()
        assert 0 <= float(x) < expected[1] and 0 <= float(y) < expected[0] and label == "1"
    assert not (out / "broken_mask.png").exists()


def test_predict_runs_the_named_strategy_at_each_image_size(trained: dict[str, Path]) -> None:
    """`--method.predict_strategy CenterPoint`: one point at the centre of each image's own
    pixels, big or small."""
    out = trained["tmp"] / "centre"
    with pytest.warns(UserWarning, match="broken.png"):
        _predict(trained, out, "--method.predict_strategy", "CenterPoint")
    for row in csv.DictReader((out / "predictions.csv").open()):
        if row["file"] != "broken.png":
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

    from lit_gradcam.segmenters.checkpoints import build_sam_tiny

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
