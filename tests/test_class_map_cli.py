"""A folder of its own classes, several objects per image, through the real CLI: fit takes the
classes from classes.txt, test scores class maps (mIoU per class, object prompts), predict
writes index PNGs and names the classes found."""

import csv
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from helpers.datasets import CLASS_MAP_CLASSES as CLASSES
from helpers.datasets import write_class_map_folder
from PIL import Image

from lit_gradcam.classifier import ShapeClassifier
from lit_gradcam.cli import cli_main, main
from lit_gradcam.data.image_folder import ImageFolder
from lit_gradcam.method.pipeline import default_object_strategies


def _args(tmp_path: Path, root: Path) -> list[str]:
    return [
        "--data.root", str(root),
        "--data.generate", "false",
        "--data.batch_size", "16",
        "--data.eval_batch_size", "16",
        "--model.stages", "2",
        "--checkpoint.dirpath", str(tmp_path / "ckpt"),
        "--trainer.default_root_dir", str(tmp_path / "logs"),
        "--trainer.enable_progress_bar", "false",
        "--trainer.precision", "32-true",
        "--trainer.max_steps", "4",
        "--trainer.val_check_interval", "2",
    ]  # fmt: skip


def test_own_classes_fit_test_and_predict_from_the_same_commands(tmp_path: Path) -> None:
    root = write_class_map_folder(tmp_path / "mine", {"train": 32, "val": 16, "test": 16})
    fit = cli_main(["fit", *_args(tmp_path, root)])
    assert fit.model.class_names == CLASSES and fit.model.hparams.multi_label
    checkpoint = torch.load(tmp_path / "ckpt" / "last.ckpt", weights_only=False)
    assert checkpoint["hyper_parameters"]["classes"] == list(CLASSES)
    assert checkpoint["state_dict"]["model.fc.weight"].shape[0] == len(CLASSES)

    cli_main(["test", *_args(tmp_path, root), "--ckpt_path", "last"])
    (results_file,) = (tmp_path / "logs").rglob("results.json")
    results = json.loads(results_file.read_text())
    assert results["classes"] == list(CLASSES) and results["num_images"] == 16
    assert set(results["class_f1"]) == set(CLASSES)
    strategies = [s.name for s in default_object_strategies()]
    assert [row["strategy"] for row in results["rows"]] == strategies
    oracle = next(r for r in results["rows"] if r["strategy"] == "GroundTruthObjectPoints")
    assert oracle["object_hit_rate"] == 1.0 and oracle["stray_point_rate"] == 0.0
    for row in results["rows"]:
        per_class = [row[f"iou_{name}"] for name in ("background", *CLASSES)]
        defined = [value for value in per_class if value is not None]
        assert row["miou"] == pytest.approx(sum(defined) / len(defined))
    table = results_file.with_suffix(".md").read_text()
    assert "miou" in table and "iou_Dot" in table

    predict_dir = tmp_path / "to_predict"
    predict_dir.mkdir()
    for stem in ("test_000", "test_001"):
        source = root / "images" / "test" / f"{stem}.png"
        (predict_dir / f"{stem}.png").write_bytes(source.read_bytes())
    out = tmp_path / "predictions"
    cli_main(
        ["predict", *_args(tmp_path, root), "--ckpt_path", "last",
         "--data.predict_dir", str(predict_dir), "--output.output_dir", str(out)]
    )  # fmt: skip
    with open(out / "predictions.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert [row["file"] for row in rows] == ["test_000.png", "test_001.png"]
    for row in rows:
        found = row["classes"].split("; ")
        assert found and set(found) <= set(CLASSES)
        mask = Image.open(out / row["mask"])
        assert mask.mode == "P" and mask.size == (48, 32)
        values = set(np.unique(np.array(mask)).tolist())
        assert values <= {0} | {CLASSES.index(name) + 1 for name in found}
        areas = dict(item.rsplit(" ", 1) for item in row["areas"].split("; "))
        for name, area in areas.items():
            assert int(area) == int((np.array(mask) == CLASSES.index(name) + 1).sum())
        assert Image.open(out / row["overlay"]).size[0] == 48
    classifier = ShapeClassifier.load_from_checkpoint(
        tmp_path / "ckpt" / "last.ckpt", map_location="cpu"
    ).eval()
    images = ImageFolder(predict_dir, tuple(classifier.input_size.tolist()))
    _, found = classifier.classify(torch.stack([images[i]["image"] for i in range(len(images))]))
    for row, classes in zip(rows, found, strict=True):  # the classifier's own decision
        assert row["classes"].split("; ") == [CLASSES[c] for c in classes.nonzero()[:, 0]]


def test_images_of_no_class_train_test_and_predict_as_background(tmp_path: Path) -> None:
    """Empty labels (negatives): the checkpoint says images may hold no class, test counts
    them, and predict names no class where the classifier finds none, with an all-background
    index PNG."""
    root = write_class_map_folder(tmp_path / "mine", {"train": 24, "val": 12, "test": 8}, 4)
    fit = cli_main(["fit", *_args(tmp_path, root)])
    assert fit.model.hparams.multi_label and fit.model.hparams.empty_images
    cli_main(["test", *_args(tmp_path, root), "--ckpt_path", "last"])
    (results_file,) = (tmp_path / "logs").rglob("results.json")
    assert json.loads(results_file.read_text())["num_images"] == 8

    predict_dir = tmp_path / "to_predict"
    predict_dir.mkdir()
    for stem in ("test_000", "test_001"):  # the first holds no object
        source = root / "images" / "test" / f"{stem}.png"
        (predict_dir / f"{stem}.png").write_bytes(source.read_bytes())
    checkpoint = torch.load(tmp_path / "ckpt" / "last.ckpt", weights_only=False)
    checkpoint["state_dict"]["label_threshold"] = torch.tensor(1.0)  # no probability reaches it
    strict = tmp_path / "strict.ckpt"
    torch.save(checkpoint, strict)
    out = tmp_path / "predictions"
    with pytest.warns(UserWarning, match=r"2 image\(s\) hold none of the classes.*test_000.png"):
        cli_main(
            ["predict", *_args(tmp_path, root), "--ckpt_path", str(strict),
             "--data.predict_dir", str(predict_dir), "--output.output_dir", str(out)]
        )  # fmt: skip
    with open(out / "predictions.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert [row["file"] for row in rows] == ["test_000.png", "test_001.png"]
    for row in rows:  # no class is kept for lack of another: each image holds none
        assert row["classes"] == row["areas"] == row["points"] == ""
        assert not np.array(Image.open(out / row["mask"])).any()


def test_a_generated_multi_object_folder_fits_and_its_classes_reach_the_checkpoint(
    tmp_path: Path,
) -> None:
    """The generator's shapes become the folder's classes.txt, then the classifier's classes
    (the data's and the model's hyper-parameters are logged together without a clash)."""
    args = [
        "--data.root", str(tmp_path / "generated"),
        "--data.shapes", "[heart, arrow, ring]",
        "--data.objects", "[1, 2]",
        "--data.train_size", "16", "--data.val_size", "8", "--data.test_size", "8",
        "--data.batch_size", "8", "--data.eval_batch_size", "8",
        "--model.stages", "2", "--no_shape.steps", "0",
        "--checkpoint.dirpath", str(tmp_path / "ckpt"),
        "--trainer.default_root_dir", str(tmp_path / "logs"),
        "--trainer.enable_progress_bar", "false",
        "--trainer.max_steps", "2", "--trainer.val_check_interval", "2",
    ]  # fmt: skip
    fit = cli_main(["fit", *args])
    assert fit.model.class_names == ("heart", "arrow", "ring")
    saved = torch.load(tmp_path / "ckpt" / "last.ckpt", weights_only=False)
    assert saved["hyper_parameters"]["classes"] == ["heart", "arrow", "ring"]


def test_a_folder_of_several_image_sizes_trains_and_tests_at_data_image_size(
    tmp_path: Path, capsys
) -> None:
    """A user's photos differ in size: without data.image_size the error names the odd files
    and the setting; with it, fit trains at that size and test scores every image at it."""
    root = write_class_map_folder(tmp_path / "mine", {"train": 24, "val": 8, "test": 8})
    for split in ("train", "val", "test"):
        for kind in ("images", "masks"):  # every third item at twice the size
            for path in sorted((root / kind / split).glob("*.png"))[::3]:
                with Image.open(path) as picture:
                    picture.resize((96, 64), Image.Resampling.NEAREST).save(path)
    with pytest.raises(SystemExit) as exit_info:
        main(["fit", *_args(tmp_path, root)])
    message = str(exit_info.value.code)
    assert "set data.image_size" in message and str(root / "images" / "train") in message
    assert "Traceback" not in capsys.readouterr().err

    sized = [*_args(tmp_path, root), "--data.image_size", "[32, 48]"]
    fit = cli_main(["fit", *sized])
    assert fit.model.input_size.tolist() == [32, 48]
    cli_main(["test", *sized, "--ckpt_path", "last"])
    (results_file,) = (tmp_path / "logs").rglob("results.json")
    results = json.loads(results_file.read_text())
    assert results["num_images"] == 8
    oracle = next(r for r in results["rows"] if r["strategy"] == "GroundTruthObjectPoints")
    assert oracle["object_hit_rate"] == 1.0
