"""Weights pretrained on generated shapes: an offline starting point for small folders.

`model.weights: shapes` fine-tunes from a ResNet that has already learned the five shapes on
a large generated dataset. No file can be downloaded offline, so the weights are built on
first use: the generator draws its images into memory (no files to write and read back) and
`ShapesPretraining`'s recipe trains on them in the CLI's default precision, with progress bars.
The result is cached the way torchvision caches its weights, in torch hub's ``checkpoints/``
folder (``$TORCH_HOME``), under a name that holds a hash of the recipe, so a changed recipe
never loads stale weights. A file lock lets only one process build (DDP ranks, two runs at
once); the others wait and load its file. The file (and its note) is written beside its place,
flushed to disk and renamed into it, so a build that is stopped or killed leaves no file there
but a whole one; the next build removes what a killed one left beside it. The recipe trains a
`ShapeClassifier`, so it sits above the classifier, which finds `load_shapes_weights` in its
`PRETRAINED_LOADERS` (filled when this module is imported, as the package's ``__init__`` does).
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import os
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import lightning as L
import numpy as np
import torch
from filelock import FileLock, Timeout
from torch import Tensor, nn
from torch.utils.data import DataLoader, Dataset
from torchmetrics import Metric
from tqdm import tqdm

from lit_gradcam.classifier.augmentation import MirrorOnly
from lit_gradcam.classifier.backbones import SHAPES_WEIGHTS, STAGES
from lit_gradcam.classifier.model import PRETRAINED_LOADERS, ShapeClassifier
from lit_gradcam.data import CLASSES
from lit_gradcam.data.backgrounds import BackgroundSource, NaturalBackgrounds
from lit_gradcam.data.generate import SIZE_RANGE, draw_sample
from lit_gradcam.errors import UserError
from lit_gradcam.imaging import image_tensor
from lit_gradcam.precision import default_precision

#: How long a process waits on another's build before it says that it is waiting.
_QUIET_WAIT_S = 2.0


@dataclass(frozen=True)
class ShapesPretraining:
    """How the shapes weights are made: the generator's split sizes and seed (not the quick
    start's seed, so fine-tuning there sees new images), the training length and optimiser,
    and mirror-only augmentation (a from-scratch ResNet learns the shapes soonest without
    the heavier jitter, which fine-tuning then adds).

    The training shapes are `train_shape_sizes` px across, up to twice the dataset's largest:
    on the dataset's own small shapes, which torchvision's stem shrinks fourfold at once, a
    from-scratch ResNet stays at chance for hundreds of steps, while larger ones among them
    get it learning at once. Validation uses the dataset's own sizes."""

    train_size: int = 20000
    val_size: int = 1000
    seed: int = 1000
    max_steps: int = 1200
    train_shape_sizes: tuple[float, float] = (13.0, 38.0)
    batch_size: int = 64
    lr: float = 2e-3
    weight_decay: float = 0.05
    hflip: float = 0.5

    def digest(self) -> str:
        """A short hash of every field: part of the cached file's name."""
        text = json.dumps(dataclasses.asdict(self), sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()[:8]


#: The recipe `weights: shapes` uses.
DEFAULT_PRETRAINING = ShapesPretraining()


def shapes_weights_path(
    arch: str,
    stem_maxpool: bool = True,
    stages: int = STAGES,
    recipe: ShapesPretraining | None = None,
) -> Path:
    """Where the weights of `arch` (with or without the stem's max-pool, with `stages`
    residual stages) made by `recipe` (default: `DEFAULT_PRETRAINING`) are cached."""
    recipe = recipe or DEFAULT_PRETRAINING
    stem = "" if stem_maxpool else "_nomaxpool"
    depth = "" if stages == STAGES else f"_{stages}stages"
    folder = Path(torch.hub.get_dir()) / "checkpoints"
    return folder / f"lit_gradcam_{arch}{stem}{depth}_shapes_{recipe.digest()}.pth"


class ShapesWeightsError(UserError, RuntimeError):
    """The cached shapes weights cannot be built, read or used; says which file and what to do."""


def load_shapes_weights(
    model: nn.Module,
    arch: str,
    stem_maxpool: bool = True,
    stages: int = STAGES,
    recipe: ShapesPretraining | None = None,
) -> None:
    """Load the shapes weights of `arch` into `model`, building and caching them first if
    needed. A head of another size than the five shapes keeps its fresh initialisation."""
    recipe = recipe or DEFAULT_PRETRAINING
    path = shapes_weights_path(arch, stem_maxpool, stages, recipe)
    with _build_lock(path):
        if not path.is_file():
            _build(path, arch, stem_maxpool, stages, recipe)
    rebuild = f"delete {path} (and its .json note) to build it afresh"
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # torch raises many types for a truncated or foreign file
        raise ShapesWeightsError(
            f"cached shapes weights {path} cannot be read ({type(error).__name__}: {error}); "
            f"{rebuild}"
        ) from error
    if not isinstance(state, dict):
        raise ShapesWeightsError(f"cached shapes weights {path} hold no state dict; {rebuild}")
    head = {key: value for key, value in state.items() if key.startswith("fc.")}
    if any(value.shape != model.state_dict()[key].shape for key, value in head.items()):
        state = {key: value for key, value in state.items() if key not in head}
    try:
        missing, unexpected = model.load_state_dict(state, strict=False)
    except RuntimeError as error:  # a tensor of another shape
        raise ShapesWeightsError(f"{path} does not fit a {arch} ({error}); {rebuild}") from None
    if unexpected or any(not key.startswith("fc.") for key in missing):
        raise ShapesWeightsError(
            f"{path} does not fit a {arch}: missing {missing}, unexpected {unexpected}; {rebuild}"
        )


#: `ShapeClassifier(weights="shapes")` loads them at `setup("fit")` through this entry.
PRETRAINED_LOADERS[SHAPES_WEIGHTS] = load_shapes_weights


@contextlib.contextmanager
def _build_lock(path: Path) -> Iterator[None]:
    """Hold the file lock of `path`'s build; a process that has to wait says so once."""
    lock = FileLock(str(path) + ".lock")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            lock.acquire(timeout=_QUIET_WAIT_S)
        except Timeout:
            print(f"Waiting for another process to finish building {path} ...", flush=True)
            lock.acquire()
    except OSError as error:
        raise ShapesWeightsError(
            f"cannot write the weights cache {path.parent} ({error}): set TORCH_HOME to a "
            "writable folder"
        ) from error
    try:
        yield
    finally:
        lock.release()


class DrawnSplit(Dataset):
    """One split of the generator's images, drawn into memory: (image, label, mask) items as
    `ShapesFolder` gives them, without writing and decoding PNG files."""

    def __init__(
        self,
        seed: int,
        split: str,
        count: int,
        size_range: tuple[float, float] = SIZE_RANGE,
        source: BackgroundSource | None = None,
    ) -> None:
        source = source or NaturalBackgrounds()
        samples = [
            draw_sample(source, seed, split, index, size_range)
            for index in tqdm(range(count), desc=f"Drawing {split} shapes")
        ]
        self.images = torch.from_numpy(np.stack([image for image, _, _ in samples]))
        self.masks = torch.from_numpy(np.stack([mask for _, mask, _ in samples]))
        self.labels = torch.tensor([CLASSES.index(label) for _, _, label in samples])

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, index: int) -> tuple[Tensor, Tensor, Tensor]:
        return image_tensor(self.images[index]), self.labels[index], self.masks[index]


def _single_process() -> bool:
    """What a build's metrics are told: no process group to sync with."""
    return False


def _build(
    path: Path, arch: str, stem_maxpool: bool, stages: int, recipe: ShapesPretraining
) -> None:
    """Draw the recipe's data, train on it, and write the backbone's weights atomically, with a
    JSON note of the recipe and the validation accuracy beside them."""
    print(
        f"Building shapes-pretrained {arch} weights (first use of `weights: {SHAPES_WEIGHTS}`; "
        f"cached afterwards in {path})"
    )
    start = time.perf_counter()
    source = NaturalBackgrounds()  # its photos are read once, for both splits
    train = DrawnSplit(recipe.seed, "train", recipe.train_size, recipe.train_shape_sizes, source)
    val = DrawnSplit(recipe.seed, "val", recipe.val_size, source=source)
    generator = torch.Generator().manual_seed(recipe.seed)
    model = ShapeClassifier(
        arch=arch,
        weights=None,
        lr=recipe.lr,
        weight_decay=recipe.weight_decay,
        augmentation=MirrorOnly(hflip=recipe.hflip),
        stem_maxpool=stem_maxpool,
        stages=stages,
    )
    # The build is one process's run, even inside a DDP job: a metric syncing with ranks that
    # wait on the lock would hang. (sync_on_compute=False set now would not reach a metric
    # that is only ever `update`d, which syncs as it was constructed.)
    for metric in model.modules():
        if isinstance(metric, Metric):
            metric.distributed_available_fn = _single_process
    precision = default_precision()
    with tempfile.TemporaryDirectory(prefix="lit_gradcam_shapes_") as scratch:
        trainer = L.Trainer(
            max_steps=recipe.max_steps,
            max_epochs=-1,
            val_check_interval=recipe.max_steps,
            check_val_every_n_epoch=None,
            precision=precision,
            logger=False,
            enable_checkpointing=False,
            enable_model_summary=False,
            devices=1,
            default_root_dir=scratch,
        )
        with torch.random.fork_rng():
            torch.manual_seed(recipe.seed)
            trainer.fit(
                model,
                train_dataloaders=DataLoader(
                    train, batch_size=recipe.batch_size, shuffle=True, generator=generator
                ),
                val_dataloaders=DataLoader(val, batch_size=100),
            )
    _save_atomically(path, lambda partial: torch.save(model.model.state_dict(), partial))
    note = {"recipe": dataclasses.asdict(recipe), "arch": arch, "stem_maxpool": stem_maxpool}
    note["stages"] = stages
    note["precision"] = precision
    note["val_acc"] = float(trainer.callback_metrics.get("val/acc", float("nan")))
    note["build_seconds"] = round(time.perf_counter() - start, 1)
    text = json.dumps(note, indent=2) + "\n"
    _save_atomically(path.with_suffix(".json"), lambda partial: partial.write_text(text))


def _save_atomically(path: Path, write: Callable[[Path], object]) -> None:
    """`write` a hidden file beside `path`, flush it to disk and rename it to `path`: a stop at
    any point leaves no file or a whole one there. Held under the build's lock, which also makes
    the hidden files of an earlier, killed build safe to remove."""
    for stale in path.parent.glob(f".{path.name}.partial-*"):
        stale.unlink(missing_ok=True)
    partial = path.with_name(f".{path.name}.partial-{os.getpid()}")
    try:
        write(partial)
        with partial.open("rb+") as handle:
            os.fsync(handle.fileno())
        os.replace(partial, path)
    finally:
        partial.unlink(missing_ok=True)
