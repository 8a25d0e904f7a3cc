"""Weights pretrained on generated shapes: an offline starting point for small folders.

`model.weights: shapes` fine-tunes from a ResNet that has already learned the five shapes on
a large generated dataset. No file can be downloaded offline, so the weights are built on
first use: the generator writes its dataset into a temporary folder and `ShapesPretraining`'s
recipe trains on it, with Lightning's progress bar. The result is cached the way torchvision
caches its weights, in torch hub's ``checkpoints/`` folder (``$TORCH_HOME``), under a name that
holds a hash of the recipe, so a changed recipe never loads stale weights. A file lock lets
only one process build (DDP ranks, two runs at once); the others wait and load its file.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import torch
from filelock import FileLock
from torch import nn

#: The `model.weights` value that selects these weights.
SHAPES_WEIGHTS = "shapes"


@dataclass(frozen=True)
class ShapesPretraining:
    """How the shapes weights are made: the generator's split sizes and seed (not the quick
    start's seed, so fine-tuning there sees new images), the training length and optimiser,
    and mirror-only augmentation (a from-scratch ResNet learns the shapes soonest without
    the heavier jitter, which fine-tuning then adds)."""

    train_size: int = 20000
    val_size: int = 1000
    seed: int = 1000
    max_steps: int = 2500
    batch_size: int = 64
    lr: float = 2e-3
    weight_decay: float = 0.05
    hflip: float = 0.5

    def digest(self) -> str:
        """A short hash of every field: part of the cached file's name."""
        text = json.dumps(dataclasses.asdict(self), sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()[:8]


#: TrainAugmentation settings that leave only the mirror on.
MIRROR_ONLY = dict(
    translate=0.0,
    scale=(1.0, 1.0),
    rotate=0.0,
    brightness=0.0,
    contrast=0.0,
    saturation=0.0,
    channel_shuffle=0.0,
    blur=0.0,
    noise=0.0,
)

#: The recipe `weights: shapes` uses.
DEFAULT_PRETRAINING = ShapesPretraining()


def shapes_weights_path(
    arch: str, stem_maxpool: bool = True, recipe: ShapesPretraining | None = None
) -> Path:
    """Where the weights of `arch` (with or without the stem's max-pool) made by `recipe`
    (default: `DEFAULT_PRETRAINING`) are cached."""
    recipe = recipe or DEFAULT_PRETRAINING
    stem = "" if stem_maxpool else "_nomaxpool"
    folder = Path(torch.hub.get_dir()) / "checkpoints"
    return folder / f"lit_gradcam_{arch}{stem}_shapes_{recipe.digest()}.pth"


def load_shapes_weights(
    model: nn.Module, arch: str, stem_maxpool: bool = True, recipe: ShapesPretraining | None = None
) -> None:
    """Load the shapes weights of `arch` into `model`, building and caching them first if
    needed. A head of another size than the five shapes keeps its fresh initialisation."""
    recipe = recipe or DEFAULT_PRETRAINING
    path = shapes_weights_path(arch, stem_maxpool, recipe)
    path.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(path) + ".lock"):
        if not path.is_file():
            _build(path, arch, stem_maxpool, recipe)
    state = torch.load(path, map_location="cpu", weights_only=True)
    head = {key: value for key, value in state.items() if key.startswith("fc.")}
    if any(value.shape != model.state_dict()[key].shape for key, value in head.items()):
        state = {key: value for key, value in state.items() if key not in head}
    missing, unexpected = model.load_state_dict(state, strict=False)
    if unexpected or any(not key.startswith("fc.") for key in missing):
        raise RuntimeError(
            f"{path} does not fit a {arch}: missing {missing}, unexpected {unexpected}; delete "
            "the file to rebuild it"
        )


def _build(path: Path, arch: str, stem_maxpool: bool, recipe: ShapesPretraining) -> None:
    """Generate the recipe's data, train on it, and write the backbone's weights atomically,
    with a JSON note of the recipe and the validation accuracy beside them."""
    import lightning as L

    from lit_gradcam.augmentation import TrainAugmentation
    from lit_gradcam.classifier import ShapeClassifier
    from lit_gradcam.data.datamodule import ShapesDataModule

    print(
        f"Building shapes-pretrained {arch} weights (first use of `weights: {SHAPES_WEIGHTS}`; "
        f"cached afterwards in {path})"
    )
    start = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="lit_gradcam_shapes_") as scratch:
        data = ShapesDataModule(
            root=str(Path(scratch) / "data"),
            batch_size=recipe.batch_size,
            train_size=recipe.train_size,
            val_size=recipe.val_size,
            test_size=0,
            seed=recipe.seed,
        )
        model = ShapeClassifier(
            arch=arch,
            weights=None,
            lr=recipe.lr,
            weight_decay=recipe.weight_decay,
            augmentation=TrainAugmentation(**MIRROR_ONLY, hflip=recipe.hflip),
            stem_maxpool=stem_maxpool,
        )
        trainer = L.Trainer(
            max_steps=recipe.max_steps,
            max_epochs=-1,
            val_check_interval=recipe.max_steps,
            check_val_every_n_epoch=None,
            logger=False,
            enable_checkpointing=False,
            enable_model_summary=False,
            devices=1,
            default_root_dir=scratch,
        )
        with torch.random.fork_rng():
            torch.manual_seed(recipe.seed)
            trainer.fit(model, datamodule=data)
    partial = path.with_name(f".{path.name}.partial-{os.getpid()}")
    torch.save(model.model.state_dict(), partial)
    os.replace(partial, path)
    note = {"recipe": dataclasses.asdict(recipe), "arch": arch, "stem_maxpool": stem_maxpool}
    note["val_acc"] = float(trainer.callback_metrics.get("val/acc", float("nan")))
    note["build_seconds"] = round(time.perf_counter() - start, 1)
    path.with_suffix(".json").write_text(json.dumps(note, indent=2) + "\n")
