"""SceneDataModule: whole seeded batches of scenes for training and validation, one image size
per batch, and a shapes-layout folder for test."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from lit_gradcam.data.dataset import DatasetError
from lit_gradcam.data.generate import generate_dataset
from lit_gradcam.sam_training.scene_data import SceneDataModule


def _data(**kwargs) -> SceneDataModule:
    settings = {"batch_size": 4, "eval_batch_size": 3, "train_batches": 5, "val_size": 7}
    return SceneDataModule(**{**settings, **kwargs})


def test_training_batches_are_seeded_scenes_of_one_listed_size_each() -> None:
    sizes = [(48, 64), (36, 64), (64, 48)]
    data = _data(image_sizes=sizes, seed=1)
    batches = list(data.train_dataloader())
    assert len(batches) == 5
    seen = set()
    for images, labels, objects in batches:
        assert images.dtype == torch.uint8 and images.shape[:2] == (4, 3)
        assert objects.shape == (4, 4, *images.shape[-2:]) and labels.shape == (4,)
        seen.add(tuple(images.shape[-2:]))
    assert seen <= set(sizes) and len(seen) > 1
    again = dict(enumerate(_data(image_sizes=sizes, seed=1).train_dataloader().dataset))
    batch = data.train_dataloader().dataset[3]
    assert torch.equal(batch[0], again[3][0]) and torch.equal(batch[2], again[3][2])


def test_validation_holds_val_size_scenes_apart_from_training() -> None:
    data = _data()
    val = list(data.val_dataloader())
    assert [len(images) for images, _, _ in val] == [3, 3, 1]
    train_first = data.train_dataloader().dataset[0][0]
    assert not any(
        images.shape == train_first.shape and torch.equal(images, train_first[: len(images)])
        for images, _, _ in val
    )


def test_test_reads_the_folder_and_names_it_when_missing(tmp_path: Path) -> None:
    missing = _data(test_root=str(tmp_path / "nowhere"))
    with pytest.raises(DatasetError, match="nowhere"):
        missing.setup("test")
    root = generate_dataset(tmp_path / "shapes", {"test": 5}, progress=False)
    data = _data(test_root=str(root))
    data.setup("test")
    (images, labels, masks), *_ = data.test_dataloader()
    assert images.shape == (3, 3, 48, 64) and masks.shape == (3, 48, 64)


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        ({"image_sizes": []}, "image_sizes"),
        ({"image_sizes": [(4, 64)]}, "image_sizes"),
        ({"max_objects": 0}, "data.max_objects must be >= 1"),
        ({"eval_batch_size": 0}, "data.eval_batch_size must be >= 1"),
        ({"num_workers": -1}, "data.num_workers must be >= 0"),
    ],
)
def test_bad_settings_are_refused(bad: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        _data(**bad)
