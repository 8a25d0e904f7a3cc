"""ShapesDataModule: generate once, read the splits a stage needs, seeded loaders, and under DDP
evaluation loaders that read every image exactly once."""

from __future__ import annotations

import shutil
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
from PIL import Image
from torch.utils.data import SequentialSampler

from lit_gradcam.data import ShapesDataModule
from lit_gradcam.data import generate as gen
from lit_gradcam.data.dataset import DatasetError

SIZES = {"train_size": 15, "val_size": 10, "test_size": 5}


def test_prepare_and_setup_on_a_tiny_dataset(tmp_path: Path):
    dm = ShapesDataModule(str(tmp_path / "shapes"), batch_size=4, eval_batch_size=6, **SIZES)
    dm.prepare_data()
    assert (tmp_path / "shapes" / gen.MARKER).is_file()
    dm.setup("fit")
    assert sorted(dm.splits) == ["train", "val"]
    assert (len(dm.splits["train"]), len(dm.splits["val"])) == (15, 10)
    images, labels, masks = next(iter(dm.train_dataloader()))
    assert images.shape == (4, 3, 48, 64) and labels.shape == (4,) and masks.shape == (4, 48, 64)
    assert labels.dtype == torch.int64 and masks.dtype == torch.bool
    assert sum(len(b[1]) for b in dm.train_dataloader()) == 15  # drop_last is off
    assert next(iter(dm.val_dataloader()))[0].shape[0] == 6
    dm.setup("test")
    assert len(dm.splits["test"]) == 5 and len(dm.test_dataloader()) == 1


def test_train_order_is_shuffled_and_seeded(tmp_path: Path):
    def in_order_and_first_batch() -> tuple[list[int], list[int]]:
        dm = ShapesDataModule(str(tmp_path / "shapes"), batch_size=15, **SIZES)
        dm.prepare_data()
        dm.setup("fit")
        return dm.splits["train"].labels, next(iter(dm.train_dataloader()))[1].tolist()

    in_order, first = in_order_and_first_batch()
    assert in_order_and_first_batch()[1] == first
    assert first != in_order and sorted(first) == sorted(in_order)


def test_prepare_data_generates_only_once(tmp_path: Path, monkeypatch):
    dm = ShapesDataModule(str(tmp_path / "shapes"), **SIZES)
    dm.prepare_data()
    monkeypatch.setattr(gen, "write_sample", lambda *a: pytest.fail("regenerated"))
    dm.prepare_data()
    changed = ShapesDataModule(str(tmp_path / "shapes"), **{**SIZES, "train_size": 30})
    with pytest.raises(DatasetError, match="generated with.*--data.generate false"):
        changed.prepare_data()


def test_existing_foreign_folder_is_read_as_is(tmp_path: Path, tiny_root: Path):
    homework = Path(shutil.copytree(tiny_root, tmp_path / "synthetic_shapes"))
    (homework / gen.MARKER).unlink()
    for generate in (False, True):
        dm = ShapesDataModule(str(homework), generate=generate, train_size=999)
        dm.prepare_data()
        dm.setup("fit")
        assert len(dm.splits["train"]) == 20
    assert not (homework / gen.MARKER).exists()


def test_missing_folder_without_generation_is_a_clear_error(tmp_path: Path):
    dm = ShapesDataModule(str(tmp_path / "synthetic_shapes"), generate=False)
    with pytest.raises(DatasetError, match="does not exist and generate is false"):
        dm.prepare_data()
    with pytest.raises(DatasetError, match="does not exist"):
        dm.setup("test")
    assert not (tmp_path / "synthetic_shapes").exists()


def test_workers_are_persistent_when_used(tiny_root: Path):
    dm = ShapesDataModule(str(tiny_root), num_workers=2, generate=False)
    dm.setup("validate")
    assert list(dm.splits) == ["val"]
    loader = dm.val_dataloader()
    assert loader.num_workers == 2 and loader.persistent_workers


def test_eval_loaders_split_an_uneven_split_across_processes_without_repeats(tiny_root: Path):
    """Ten images on three processes: 4 + 3 + 3, each image once (Lightning's default sampler
    would pad to 12 by repeating two)."""
    for split in ("val", "test"):
        seen = []
        for rank in range(3):
            dm = ShapesDataModule(str(tiny_root), generate=False, eval_batch_size=2)
            dm.trainer = SimpleNamespace(
                distributed_sampler_kwargs={"num_replicas": 3, "rank": rank}, lightning_module=None
            )
            dm.setup("validate" if split == "val" else "test")
            loader = dm.val_dataloader() if split == "val" else dm.test_dataloader()
            seen.append([int(i) for i in loader.sampler])
            assert sum(len(batch[1]) for batch in loader) == len(seen[-1])
        assert [len(part) for part in seen] == [4, 3, 3]
        assert sorted(sum(seen, [])) == list(range(10))
    one = ShapesDataModule(str(tiny_root), generate=False)
    one.trainer = SimpleNamespace(distributed_sampler_kwargs=None, lightning_module=None)
    one.setup("test")
    assert isinstance(one.test_dataloader().sampler, SequentialSampler)


def test_splits_of_different_image_sizes_are_refused(tiny_copy: Path) -> None:
    """Each split is checked on its own; a val split of another size than train is caught too."""
    for png in (tiny_copy / "images" / "val").glob("*.png"):
        Image.open(png).resize((56, 40)).save(png)
    for png in (tiny_copy / "masks" / "val").glob("*.png"):
        Image.open(png).resize((56, 40), Image.NEAREST).save(png)
    module = ShapesDataModule(str(tiny_copy), generate=False)
    with pytest.raises(
        DatasetError, match=r"different sizes \(height x width: train 48x64, val 40x56\)"
    ):
        module.setup("fit")
