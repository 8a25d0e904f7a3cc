"""SceneDataModule: class-agnostic scenes (`scenes`) to train the SAM stand-in, drawn on the fly.

Training and validation batches are scenes, drawn whole (each item of the datasets is one batch,
keyed by (seed, split, index), so a seed fixes every batch wherever it is drawn, DDP included);
each batch has one image size, chosen among `image_sizes`. A batch is (images (B, 3, H, W) uint8,
labels (B,) zeros, objects (B, K, H, W) bool), which `SamTuner` reads as it reads the shapes
data. `test` scores the stand-in on a shapes-layout folder (`test_root`), the data it stands in
for; nothing is generated for it.
"""

from __future__ import annotations

import zlib
from pathlib import Path

import torch
from lightning.pytorch import LightningDataModule
from torch import Tensor
from torch.utils.data import DataLoader, Dataset

from lit_gradcam.data.datamodule import eval_sampler
from lit_gradcam.data.dataset import DatasetError, ShapesFolder
from lit_gradcam.errors import ConfigError, require_at_least
from lit_gradcam.sam_training.scene_backgrounds import SceneBackgrounds
from lit_gradcam.sam_training.scenes import draw_scenes

#: Image sizes of the training scenes: the shapes' 48 x 64 half the time, other aspect ratios,
#: and one larger size that SAM's input resize shrinks.
DEFAULT_IMAGE_SIZES = ((48, 64), (48, 64), (64, 64), (64, 48), (36, 64), (72, 96))


class SceneBatches(Dataset):
    """`scenes` scenes in batches of `batch_size` (the last one may be smaller); batch i is
    drawn from its own seeded RNG, at an image size from `image_sizes` drawn from that RNG too."""

    def __init__(
        self,
        scenes: int,
        batch_size: int,
        image_sizes: list[tuple[int, int]],
        max_objects: int,
        seed: int,
        split: str,
    ) -> None:
        self.scenes = scenes
        self.batch_size = batch_size
        self.image_sizes = [tuple(size) for size in image_sizes]
        self.max_objects = max_objects
        self.key = seed * 1_000_003 + zlib.crc32(split.encode())
        self.backgrounds: SceneBackgrounds | None = None

    def __len__(self) -> int:
        return -(-self.scenes // self.batch_size)

    def __getitem__(self, index: int) -> tuple[Tensor, Tensor, Tensor]:
        if not 0 <= index < len(self):
            raise IndexError(index)
        batch = min(self.batch_size, self.scenes - index * self.batch_size)
        if self.backgrounds is None:  # loaded on first use, in the process that draws
            self.backgrounds = SceneBackgrounds()
        generator = torch.Generator().manual_seed(self.key * 10_000_019 + index)
        pick = int(torch.randint(len(self.image_sizes), (), generator=generator))
        height, width = self.image_sizes[pick]
        scenes = draw_scenes(batch, height, width, generator, self.backgrounds, self.max_objects)
        labels = torch.zeros(batch, dtype=torch.long)
        return scenes.images, labels, scenes.objects


class SceneDataModule(LightningDataModule):
    """Scenes to train and validate a SAM on, and a shapes-layout folder to test it on.

    Args:
        batch_size: training scenes per batch. eval_batch_size: validation/test batch size.
        train_batches: distinct training batches per epoch (each epoch reuses them, shuffled).
        val_size: validation scenes (scored from their largest object).
        image_sizes: (height, width) sizes; each batch has one, chosen at random.
        max_objects: at most this many objects per scene (at least one).
        seed: fixes every scene.
        test_root: the shapes-layout folder whose `test` split `python main.py test` scores.
        num_workers: loader worker processes (0 = draw in the main process).
    """

    def __init__(
        self,
        batch_size: int = 32,
        eval_batch_size: int = 100,
        train_batches: int = 2000,
        val_size: int = 200,
        image_sizes: list[tuple[int, int]] | None = None,
        max_objects: int = 4,
        seed: int = 0,
        test_root: str = "data/quickstart",
        num_workers: int = 0,
    ) -> None:
        super().__init__()
        image_sizes = list(DEFAULT_IMAGE_SIZES if image_sizes is None else image_sizes)
        if not image_sizes or any(len(size) != 2 or min(size) < 8 for size in image_sizes):
            raise ConfigError(
                f"image_sizes must list (height, width) pairs of at least 8, got {image_sizes}"
            )
        require_at_least(
            "data", 1, batch_size=batch_size, eval_batch_size=eval_batch_size,
            train_batches=train_batches, val_size=val_size, max_objects=max_objects,
        )  # fmt: skip
        require_at_least("data", 0, num_workers=num_workers)
        self.save_hyperparameters()
        self.hparams.image_sizes = image_sizes
        self.test_split: ShapesFolder | None = None

    def _batches(self, split: str, scenes: int, batch_size: int) -> SceneBatches:
        hp = self.hparams
        return SceneBatches(scenes, batch_size, hp.image_sizes, hp.max_objects, hp.seed, split)

    def setup(self, stage: str | None = None) -> None:
        if stage == "test":
            root = Path(self.hparams.test_root)
            if not root.is_dir():
                raise DatasetError(
                    f"test folder {root} does not exist: the SAM stand-in is tested on a "
                    "shapes-layout folder; make the quick start's with `python main.py fit "
                    "--config configs/quickstart.yaml`, or pass --data.init_args.test_root"
                )
            self.test_split = ShapesFolder(root, "test")
        if stage == "predict":
            raise DatasetError("SceneDataModule has no predict data: predict with a classifier")

    def train_dataloader(self) -> DataLoader:
        hp = self.hparams
        batches = self._batches("train", hp.train_batches * hp.batch_size, hp.batch_size)
        return self._loader(batches, shuffle=True)

    def val_dataloader(self) -> DataLoader:
        hp = self.hparams
        batches = self._batches("val", hp.val_size, hp.eval_batch_size)
        return self._loader(batches, sampler=eval_sampler(self.trainer, batches))

    def test_dataloader(self) -> DataLoader:
        split = self.test_split
        return DataLoader(
            split,
            batch_size=self.hparams.eval_batch_size,
            num_workers=self.hparams.num_workers,
            sampler=eval_sampler(self.trainer, split),
        )

    def _loader(self, batches: Dataset, **kwargs) -> DataLoader:
        workers = self.hparams.num_workers
        generator = torch.Generator().manual_seed(self.hparams.seed)
        return DataLoader(
            batches,
            batch_size=None,
            num_workers=workers,
            persistent_workers=workers > 0,
            generator=generator,
            **kwargs,
        )
