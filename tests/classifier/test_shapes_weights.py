"""`weights: shapes`: built once on first use, cached under torch hub's folder, then loaded."""

import json
import socket
import subprocess
import sys
import threading
from pathlib import Path

import pytest
import torch
from filelock import FileLock

import lit_gradcam.classifier.shapes_weights as pretrained
from lit_gradcam.classifier import ShapeClassifier
from lit_gradcam.classifier.backbones import build_resnet
from lit_gradcam.classifier.shapes_weights import (
    DEFAULT_PRETRAINING,
    DrawnSplit,
    ShapesPretraining,
    ShapesWeightsError,
    load_shapes_weights,
    shapes_weights_path,
)
from lit_gradcam.data.dataset import ShapesFolder
from lit_gradcam.data.generate import generate_dataset

TINY = ShapesPretraining(train_size=10, val_size=5, max_steps=2, batch_size=5)


@pytest.fixture
def hub(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """torch hub's folder in a temporary place, and the tiny recipe as the default."""
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "hub"))
    monkeypatch.setattr(pretrained, "DEFAULT_PRETRAINING", TINY)
    return tmp_path / "hub"


def _shapes_resnet(num_classes: int = 5) -> torch.nn.Module:
    """A resnet18 with the shapes weights loaded, as `ShapeClassifier.setup("fit")` builds it."""
    model = build_resnet("resnet18", num_classes, None)
    load_shapes_weights(model, "resnet18")
    return model


def test_built_once_then_loaded_from_the_cache(hub: Path, monkeypatch) -> None:
    first = _shapes_resnet()
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
    loaded = _shapes_resnet().state_dict()["conv1.weight"]
    torch.manual_seed(123)
    fresh = build_resnet("resnet18", 5, None).state_dict()["conv1.weight"]
    assert not torch.allclose(loaded, fresh)


def test_another_recipe_gets_another_file(hub: Path) -> None:
    other = ShapesPretraining(train_size=10, val_size=5, max_steps=3, batch_size=5)
    assert shapes_weights_path("resnet18", recipe=other) != shapes_weights_path("resnet18")
    assert shapes_weights_path("resnet34") != shapes_weights_path("resnet18")
    assert shapes_weights_path("resnet18", False) != shapes_weights_path("resnet18")
    assert shapes_weights_path("resnet18", stages=3) != shapes_weights_path("resnet18")


def test_a_three_stage_model_gets_weights_built_with_three_stages(hub: Path) -> None:
    """The build trains the network it is asked for: its file holds no layer4, says so in its
    note, and loads into a three-stage model whole."""
    model = build_resnet("resnet18", 5, None, stages=3)
    load_shapes_weights(model, "resnet18", stages=3)
    path = shapes_weights_path("resnet18", stages=3)
    saved = torch.load(path, weights_only=True)
    assert saved.keys() == model.state_dict().keys() and saved["fc.weight"].shape == (5, 256)
    assert json.loads(path.with_suffix(".json").read_text())["stages"] == 3


def test_a_head_of_another_size_keeps_its_init(hub: Path) -> None:
    model = _shapes_resnet(7)
    saved = torch.load(shapes_weights_path("resnet18"), weights_only=True)
    assert model.fc.weight.shape == (7, 512)
    torch.testing.assert_close(model.conv1.weight, saved["conv1.weight"])


def test_a_file_of_another_architecture_is_refused_clearly(hub: Path) -> None:
    path = shapes_weights_path("resnet34")
    path.parent.mkdir(parents=True)
    torch.save(build_resnet("resnet18", 5, None).state_dict(), path)
    with pytest.raises(ShapesWeightsError, match=r"does not fit a resnet34.*to build it afresh"):
        load_shapes_weights(build_resnet("resnet34", 5, None), "resnet34")


def test_importing_the_classifier_alone_makes_shapes_weights_loadable() -> None:
    """A config's class_path imports only `lit_gradcam.classifier`; the package's ``__init__``
    imports the recipe above it, which registers its loader with the classifier."""
    code = (
        "from lit_gradcam.classifier.model import PRETRAINED_LOADERS as L; "
        "print(L['shapes'].__name__)"
    )
    run = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True)
    assert run.stdout.split() == ["load_shapes_weights"]


def test_build_resnet_refuses_to_skip_the_shapes_weights() -> None:
    with pytest.raises(ValueError, match="load_shapes_weights"):
        build_resnet("resnet18", 5, "shapes")


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


def test_a_process_waiting_for_another_build_says_so(hub: Path, capsys) -> None:
    """While another process holds the build's lock, the waiting one prints that it waits, then
    loads the file the other wrote."""
    path = shapes_weights_path("resnet18")
    path.parent.mkdir(parents=True)
    lock = FileLock(str(path) + ".lock")
    lock.acquire()
    model = build_resnet("resnet18", 5, None)
    loading = threading.Thread(target=load_shapes_weights, args=(model, "resnet18"))
    loading.start()
    loading.join(timeout=4 * pretrained._QUIET_WAIT_S)
    assert loading.is_alive()  # still waiting on the lock
    source = build_resnet("resnet18", 5, None)
    torch.save(source.state_dict(), path)  # what the other process built
    lock.release()
    loading.join(timeout=60)
    assert f"Waiting for another process to finish building {path}" in capsys.readouterr().out
    torch.testing.assert_close(model.conv1.weight, source.conv1.weight)


#: Two DDP ranks (gloo, as Lightning's DDP sets them up) loading the shapes weights on first
#: use: rank 0 builds, rank 1 waits on the file lock; each saves what it loaded.
DDP_SCRIPT = """
import os, sys
from pathlib import Path
import torch, torch.distributed as dist, torch.multiprocessing as mp
from lit_gradcam.classifier.backbones import build_resnet
from lit_gradcam.classifier.shapes_weights import ShapesPretraining, load_shapes_weights

def rank_main(rank, home, port, recipe):
    os.environ.update(TORCH_HOME=home, LOCAL_RANK=str(rank), WORLD_SIZE="2")
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=2)
    model = build_resnet("resnet18", 5, None)
    load_shapes_weights(model, "resnet18", recipe=ShapesPretraining(**recipe))
    dist.barrier()
    torch.save(model.state_dict(), Path(home) / f"rank{rank}.pt")
    dist.destroy_process_group()

if __name__ == "__main__":
    recipe = dict(train_size=10, val_size=5, max_steps=2, batch_size=5)
    mp.spawn(rank_main, args=(sys.argv[1], int(sys.argv[2]), recipe), nprocs=2)
"""


@pytest.mark.slow
def test_the_first_build_under_ddp_finishes_and_every_rank_loads_it(tmp_path: Path) -> None:
    """Inside a DDP job, rank 0 builds in a nested Trainer while rank 1 waits on the file lock:
    the build must not wait on rank 1 (its metrics would sync over the job's process group)."""
    script = tmp_path / "ddp_build.py"
    script.write_text(DDP_SCRIPT)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    try:
        subprocess.run(
            [sys.executable, str(script), str(tmp_path), str(port)], check=True, timeout=300
        )
    except subprocess.TimeoutExpired:
        pytest.fail("the first build under DDP did not finish in 300 s (a deadlock)")
    assert TINY == ShapesPretraining(train_size=10, val_size=5, max_steps=2, batch_size=5)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "hub"))
        built = torch.load(shapes_weights_path("resnet18", recipe=TINY), weights_only=True)
    for rank in (0, 1):
        loaded = torch.load(tmp_path / f"rank{rank}.pt", weights_only=True)
        torch.testing.assert_close(loaded["conv1.weight"], built["conv1.weight"])
