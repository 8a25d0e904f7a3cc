"""ShapesDataModule: generates the shapes dataset once (or reads a given folder) and loads it."""

from __future__ import annotations

from pathlib import Path

import torch
from lightning.pytorch import LightningDataModule, Trainer
from lightning.pytorch.overrides.distributed import UnrepeatedDistributedSampler
from lightning.pytorch.trainer.states import TrainerFn
from torch.utils.data import DataLoader, Dataset, Sampler

from lit_gradcam.data.dataset import DatasetError, ShapesFolder
from lit_gradcam.data.generate import MARKER, DatasetExistsError, generate_dataset
from lit_gradcam.data.image_folder import ImageFolder, collate_images
from lit_gradcam.data.multi_object import DEFAULT_MAX_OVERLAP, DEFAULT_OBJECTS, scene_spec
from lit_gradcam.data.shape_bank import SIZE_RANGE
from lit_gradcam.errors import ConfigError, file_in_the_way, require_at_least

#: Which splits each Lightning stage reads.
STAGE_SPLITS = {"fit": ("train", "val"), "validate": ("val",), "test": ("test",)}


def eval_sampler(trainer: Trainer | None, dataset: Dataset) -> Sampler | None:
    """Under DDP, every item once: each process reads every N-th item, with no padding.

    Lightning's default `DistributedSampler` pads an uneven split by repeating items, and the
    metrics would count those twice. A process may then run one batch fewer than another, which
    is safe here: evaluation syncs nothing per batch (torchmetrics and the logged epoch values
    sync at epoch end), and every process runs at least one batch.
    """
    kwargs = trainer.distributed_sampler_kwargs if trainer is not None else None
    if not kwargs or kwargs["num_replicas"] == 1:
        return None  # Lightning's own choice: sequential, or its sampler where it wants one
    return UnrepeatedDistributedSampler(dataset, shuffle=False, **kwargs)


class ShapesDataModule(LightningDataModule):
    """The shapes dataset in the shapes layout under `root`.

    Args:
        root: dataset folder; generated there if absent (and `generate`), else read as is,
            e.g. the reference's extracted `synthetic_shapes/`.
        batch_size: training batch size. eval_batch_size: validation/test batch size.
        num_workers: loader worker processes (0 = load in the main process).
        train_size, val_size, test_size, seed, background: generator arguments
            (`background`: "natural" offline, or "cifar10").
        generate: if False, `root` must already hold a dataset; nothing is generated.
        predict_dir: a folder of images of any size for `python main.py predict`.
        image_size: (height, width) every image is read at: the folder's (fit, validate and
            test read its images resized and its masks by nearest pixel, so images of several
            sizes or large photos serve one size, and scores are taken at it) and predict's
            (classified at it). None: the folder's own size, which all its images must share,
            and for predict the size the checkpoint was trained at (the generator's for a
            checkpoint that does not say).
        shapes, objects, object_size, max_overlap, rotation: what the generator draws.
            `shapes`: shapes of its bank, the folder's classes in label-index order (None: the
            course's five); `objects`: (min, max) per image; `shapes` given or more than one
            object: scenes with classes.txt and index masks. `object_size`: (min, max) px
            across; `max_overlap`: the largest share of an object's area later objects may
            cover (0: never touch); `rotation`: the largest angle in degrees each object is
            turned by (0: upright).
    """

    def __init__(
        self,
        root: str = "data/shapes",
        batch_size: int = 128,
        eval_batch_size: int = 100,
        num_workers: int = 0,
        train_size: int = 3500,
        val_size: int = 1000,
        test_size: int = 500,
        seed: int = 0,
        background: str = "natural",
        generate: bool = True,
        predict_dir: str | None = None,
        image_size: tuple[int, int] | None = None,
        shapes: list[str] | None = None,
        objects: tuple[int, int] = DEFAULT_OBJECTS,
        object_size: tuple[float, float] = SIZE_RANGE,
        max_overlap: float = DEFAULT_MAX_OVERLAP,
        rotation: float = 0.0,
    ) -> None:
        super().__init__()
        require_at_least("data", 1, batch_size=batch_size, eval_batch_size=eval_batch_size)
        require_at_least(
            "data", 0, num_workers=num_workers, train_size=train_size, val_size=val_size,
            test_size=test_size,
        )  # fmt: skip
        if image_size is not None and (len(image_size) != 2 or min(image_size) < 1):
            raise ConfigError(
                f"data.image_size must be (height, width) of at least 1 pixel each, or null for "
                f"the checkpoint's training size; got {image_size}"
            )
        scene_spec(
            shapes, objects, object_size, max_overlap, rotation,
            ("data.shapes", "data.objects", "data.object_size", "data.max_overlap",
             "data.rotation"),
        )  # fmt: skip
        self.save_hyperparameters()
        self.root = Path(root)
        self.splits: dict[str, ShapesFolder] = {}

    def prepare_data(self) -> None:
        """Generate the dataset if `root` is absent; leave any existing foreign folder alone."""
        hp = self.hparams
        if self.trainer is not None and self.trainer.state.fn == TrainerFn.PREDICTING:
            return  # predict reads predict_dir only
        if self.root.exists() and not self.root.is_dir():
            raise DatasetError(
                f"data.root {self.root} is a file; expected a dataset folder (the shapes "
                "layout images/, masks/, labels/) or a path where one can be generated"
            )
        if above := file_in_the_way(self.root.parent):
            raise DatasetError(f"data.root {self.root} lies under {above}, which is a file")
        if not hp.generate:
            if not self.root.is_dir():
                raise DatasetError(
                    f"dataset folder {self.root} does not exist and generate is false: point "
                    "root at an extracted shapes folder (e.g. synthetic_shapes/) or set "
                    "generate: true"
                )
            return
        if self.root.is_dir() and any(self.root.iterdir()) and not (self.root / MARKER).exists():
            return  # a dataset this generator did not make: read as is
        sizes = {"train": hp.train_size, "val": hp.val_size, "test": hp.test_size}
        try:
            generate_dataset(
                self.root, sizes, hp.seed, hp.background, classes=hp.shapes,
                objects=hp.objects, size_range=hp.object_size, max_overlap=hp.max_overlap,
                rotation=hp.rotation,
            )  # fmt: skip
        except DatasetExistsError as error:  # a generated set of other sizes, seed or background
            raise DatasetError(
                f"{error} To read it as it is, pass --data.generate false."
            ) from None
        except OSError as error:  # a folder the file system will not create or write
            raise DatasetError(f"cannot generate the dataset in {self.root}: {error}") from None

    def setup(self, stage: str | None = None) -> None:
        """Read (and validate) the splits `stage` needs; all three if stage is None."""
        if stage == "predict":
            if self.hparams.predict_dir is None:
                raise DatasetError(
                    "predict needs a folder of images: pass --data.predict_dir path/to/folder"
                )
            self.predict_images = ImageFolder(self.hparams.predict_dir)
            return
        wanted = ("train", "val", "test") if stage is None else STAGE_SPLITS.get(stage, ())
        for split in wanted:
            if split not in self.splits:
                self.splits[split] = ShapesFolder(self.root, split, size=self.hparams.image_size)
        sizes = {name: split.image_size for name, split in self.splits.items()}
        if len(set(sizes.values())) > 1:
            listed = ", ".join(f"{name} {h}x{w}" for name, (h, w) in sizes.items())
            raise DatasetError(
                f"the splits of {self.root} hold images of different sizes (height x width: "
                f"{listed}); a model is trained and scored at one size"
            )

    @property
    def classes(self) -> tuple[str, ...] | None:
        """The folder's class names (its classes.txt, else the five shapes); None before a
        split is read."""
        return self._first_split("classes")

    @property
    def semantic(self) -> bool:
        """Whether the folder's masks are class-index maps (it has a classes.txt)."""
        return bool(self._first_split("semantic"))

    @property
    def multi_label(self) -> bool:
        """Whether some label file of the folder lists several classes, or none."""
        return bool(self._first_split("multi_label"))

    @property
    def empty_images(self) -> bool:
        """Whether some label file of the folder lists no class."""
        return bool(self._first_split("empty_images"))

    def _first_split(self, attribute: str) -> object:
        """An attribute every split of one folder shares, from the first split read."""
        split = next(iter(self.splits.values()), None)
        return None if split is None else getattr(split, attribute)

    def train_dataloader(self) -> DataLoader:
        generator = torch.Generator().manual_seed(self.hparams.seed)
        return self._loader("train", self.hparams.batch_size, shuffle=True, generator=generator)

    def val_dataloader(self) -> DataLoader:
        split = self.splits["val"]
        return self._loader(
            "val", self.hparams.eval_batch_size, sampler=eval_sampler(self.trainer, split)
        )

    def test_dataloader(self) -> DataLoader:
        split = self.splits["test"]
        trained = self._trained_size()
        if trained is not None and split.image_size != trained:
            raise DatasetError(
                f"split 'test' of {self.root} holds {split.image_size[0]}x{split.image_size[1]} "
                f"images (height x width), the checkpoint was trained at {trained[0]}x"
                f"{trained[1]}: test on a folder of the training size, or read it at that "
                f"size with --data.image_size '[{trained[0]}, {trained[1]}]'"
            )
        return self._loader(
            "test", self.hparams.eval_batch_size, sampler=eval_sampler(self.trainer, split)
        )

    def predict_dataloader(self) -> DataLoader:
        """The predict folder, resized to `image_size`, else the checkpoint's training size, else
        `ImageFolder`'s own; built after the checkpoint is restored, so its size is known."""
        size = self.hparams.image_size or self._trained_size()
        if size is not None:
            self.predict_images.size = tuple(size)
        return DataLoader(
            self.predict_images,
            batch_size=self.hparams.eval_batch_size,
            num_workers=self.hparams.num_workers,
            collate_fn=collate_images,
        )

    def _trained_size(self) -> tuple[int, int] | None:
        """The training size recorded by the model being run, if it records one."""
        model = self.trainer.lightning_module if self.trainer is not None else None
        size = getattr(model, "input_size", None)
        return tuple(size.tolist()) if size is not None and int(size.min()) > 0 else None

    def _loader(self, split: str, batch_size: int, **kwargs) -> DataLoader:
        workers = self.hparams.num_workers
        return DataLoader(
            self.splits[split],
            batch_size=batch_size,
            num_workers=workers,
            persistent_workers=workers > 0,
            **kwargs,
        )
