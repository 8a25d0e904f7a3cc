"""`weights: shapes`: built once on first use, cached under torch hub's folder, then loaded."""

from pathlib import Path

import pytest
import torch

import lit_gradcam.pretrained as pretrained
from lit_gradcam.classifier import ShapeClassifier, build_resnet
from lit_gradcam.data.dataset import ShapesFolder
from lit_gradcam.data.generate import generate_dataset
from lit_gradcam.pretrained import (
    DEFAULT_PRETRAINING,
    DrawnSplit,
    ShapesPretraining,
    load_shapes_weights,
    shapes_weights_path,
)

TINY = ShapesPretraining(train_size=10, val_size=5, max_steps=2, batch_size=5)


@pytest.fixture
def hub(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """torch hub's folder in a temporary place, and the tiny recipe as the default."""
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "hub"))
    monkeypatch.setattr(pretrained, "DEFAULT_PRETRAINING", TINY)
    return tmp_path / "hub"


def test_built_once_then_loaded_from_the_cache(hub: Path, monkeypatch) -> None:
    first = build_resnet("resnet18", 5, "shapes")
    path = shapes_weights_path("resnet18")
    assert path.parent == hub / "checkpoints" and TINY.digest() in path.name
    assert path.with_suffix(".json").is_file()
    assert not list(path.parent.glob(".*partial*"))  # written atomically
    saved = torch.load(path, weights_only=True)
    for key, value in first.state_dict().items():
        torch.testing.assert_close(value, saved[key])

    def must_not_build(*args, **kwargs):
        raise AssertionError("weights were rebuilt although cached")

    monkeypatch.setattr(pretrained, "_build", must_not_build)
    classifier = ShapeClassifier(weights="shapes")
    key = "layer1.0.conv1.weight"
    assert not torch.allclose(classifier.model.state_dict()[key], saved[key])
    classifier.setup("test")  # testing restores a checkpoint: nothing to load
    assert not torch.allclose(classifier.model.state_dict()[key], saved[key])
    classifier.setup("fit")  # fitting starts from the cached weights
    torch.testing.assert_close(classifier.model.state_dict()[key], saved[key])
    with torch.no_grad():
        classifier.model.layer1[0].conv1.weight.add_(1.0)  # as if the first fit trained it
    classifier.setup("fit")  # a second fit goes on from there
    assert not torch.allclose(classifier.model.state_dict()[key], saved[key])


def test_weights_differ_from_a_fresh_init(hub: Path) -> None:
    torch.manual_seed(123)
    loaded = build_resnet("resnet18", 5, "shapes").state_dict()["conv1.weight"]
    torch.manual_seed(123)
    fresh = build_resnet("resnet18", 5, None).state_dict()["conv1.weight"]
    assert not torch.allclose(loaded, fresh)


def test_another_recipe_gets_another_file(hub: Path) -> None:
    other = ShapesPretraining(train_size=10, val_size=5, max_steps=3, batch_size=5)
    assert shapes_weights_path("resnet18", True, other) != shapes_weights_path("resnet18")
    assert shapes_weights_path("resnet34") != shapes_weights_path("resnet18")
    assert shapes_weights_path("resnet18", False) != shapes_weights_path("resnet18")


def test_a_head_of_another_size_keeps_its_init(hub: Path) -> None:
    model = build_resnet("resnet18", 7, "shapes")
    saved = torch.load(shapes_weights_path("resnet18"), weights_only=True)
    assert model.fc.weight.shape == (7, 512)
    torch.testing.assert_close(model.conv1.weight, saved["conv1.weight"])


def test_a_file_of_another_architecture_is_refused_clearly(hub: Path) -> None:
    path = shapes_weights_path("resnet34")
    path.parent.mkdir(parents=True)
    torch.save(build_resnet("resnet18", 5, None).state_dict(), path)
    with pytest.raises(RuntimeError, match="delete the file to rebuild it"):
        load_shapes_weights(build_resnet("resnet34", 5, None), "resnet34")


def test_unknown_weight_names_mention_shapes() -> None:
    with pytest.raises(ValueError, match="'shapes'"):
        build_resnet("resnet18", 5, "SHAPES_V9")
    with pytest.raises(ValueError, match="'shapes'"):  # at construction, not when fit starts
        ShapeClassifier(weights="SHAPES_V9")


def test_drawn_split_holds_what_the_generator_writes(tmp_path: Path) -> None:
    """The build's in-memory split is the generated folder's split, item for item (PNG is
    lossless), without writing any file."""
    root = generate_dataset(tmp_path / "shapes", {"val": 6}, seed=3, progress=False)
    written, drawn = ShapesFolder(root, "val"), DrawnSplit(3, "val", 6)
    assert len(drawn) == len(written) == 6
    for index in range(6):
        for ours, theirs in zip(drawn[index], written[index], strict=True):
            assert ours.dtype == theirs.dtype
            torch.testing.assert_close(ours, theirs, atol=0, rtol=0)


def test_the_build_trains_on_larger_shapes_than_the_dataset_holds() -> None:
    default = DrawnSplit(0, "train", 30).masks.sum((1, 2)).float().mean()
    larger = DrawnSplit(0, "train", 30, DEFAULT_PRETRAINING.train_shape_sizes)
    assert larger.masks.sum((1, 2)).float().mean() > 2 * default
