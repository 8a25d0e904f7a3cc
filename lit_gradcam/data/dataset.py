"""ShapesFolder: reads one split of any folder in the homework layout, validated up front.

    ROOT/images/{split}/{stem}.png   RGB, RGBA, grey or palette (served as RGB)
    ROOT/masks/{split}/{stem}.png    anything > 0 is the shape (0/255, 0/1, grey or RGB)
    ROOT/labels/{split}/{stem}.txt   a class name from CLASSES

Broken data should fail before training starts, with one message naming the file, rather than
as a crash in a loader worker hours in. So __init__ decodes every file once and keeps the
decoded pixels (a 48x64 split of 5000 costs ~60 MB), which also spares the loaders any I/O.
"""

from __future__ import annotations

import io
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch import Tensor
from torch.utils.data import Dataset

from lit_gradcam.data import CLASSES
from lit_gradcam.imaging import normalize_imagenet

KINDS = {"images": ".png", "masks": ".png", "labels": ".txt"}
#: How many offending names an error message lists before "...".
SHOWN = 5


class DatasetError(ValueError):
    """A dataset folder does not follow the homework layout; the message names the culprit."""


def _few(names: list[str]) -> str:
    shown = ", ".join(sorted(names)[:SHOWN])
    return shown + (f", ... ({len(names)} in all)" if len(names) > SHOWN else "")


def _decode(path: Path) -> Image.Image:
    """Read, verify (chunk CRCs) and fully decode one image; DatasetError naming it if broken."""
    try:
        data = path.read_bytes()
        with Image.open(io.BytesIO(data)) as probe:
            probe.verify()
        image = Image.open(io.BytesIO(data))
        image.load()
    except Exception as error:  # PIL raises many types for broken files
        raise DatasetError(
            f"unreadable or truncated image {path}: {type(error).__name__}: {error}"
        ) from error
    return image


def _rgb(image: Image.Image) -> np.ndarray:
    return np.array(image if image.mode == "RGB" else image.convert("RGB"))


def _binary(image: Image.Image) -> np.ndarray:
    """Mask pixels > 0 (any colour channel for colour masks, the value for grey ones)."""
    if image.mode not in ("1", "L", "I", "I;16", "F"):
        image = image.convert("RGB")
    values = np.asarray(image)
    return values.max(axis=-1) > 0 if values.ndim == 3 else values > 0


class ShapesFolder(Dataset):
    """One split of a homework-layout folder: (image, label, mask) per stem, sorted by stem.

    image: float32 (3, H, W), ImageNet-normalised if `normalize` else in [0, 1];
    label: int64 index into CLASSES; mask: bool (H, W).
    """

    classes = CLASSES

    def __init__(self, root: str | Path, split: str, normalize: bool = True) -> None:
        self.root, self.split, self.normalize = Path(root), split, normalize
        folders = self._check_folders()
        self.stems = self._matching_stems(folders)
        self.image_paths = [folders["images"] / f"{s}.png" for s in self.stems]
        self.mask_paths = [folders["masks"] / f"{s}.png" for s in self.stems]
        self.labels = [self._read_label(folders["labels"] / f"{s}.txt") for s in self.stems]
        with ThreadPoolExecutor(max_workers=4) as pool:  # PIL decodes without the GIL
            images = list(pool.map(_decode, self.image_paths))
            masks = list(pool.map(_decode, self.mask_paths))
        self._check_sizes(images, masks)
        self._images = [_rgb(image) for image in images]
        self._masks = [_binary(mask) for mask in masks]

    def _check_folders(self) -> dict[str, Path]:
        if not self.root.is_dir():
            raise DatasetError(
                f"dataset folder {self.root} does not exist; expected the homework layout "
                "images/{split}/, masks/{split}/, labels/{split}/ inside it"
            )
        folders = {kind: self.root / kind / self.split for kind in KINDS}
        missing = [str(folder) for folder in folders.values() if not folder.is_dir()]
        if missing:
            raise DatasetError(
                f"split {self.split!r} of {self.root} is missing folder(s) {', '.join(missing)}; "
                f"expected images/{self.split}/, masks/{self.split}/ and labels/{self.split}/"
            )
        return folders

    def _matching_stems(self, folders: dict[str, Path]) -> list[str]:
        """Stems present in all three folders; DatasetError if any folder lacks some."""
        stems = {
            kind: {
                p.stem for p in folder.iterdir() if p.suffix.lower() == KINDS[kind] and p.is_file()
            }
            for kind, folder in folders.items()
        }
        every = set.union(*stems.values())
        if not every:
            raise DatasetError(
                f"split {self.split!r} of {self.root} is empty: no .png images in "
                f"{folders['images']}"
            )
        problems = [
            f"{folders[kind]} lacks {len(every - found)} stem(s) that other folders have: "
            f"{_few(list(every - found))} (expected {{stem}}{KINDS[kind]} for each)"
            for kind, found in stems.items()
            if every - found
        ]
        if problems:
            raise DatasetError(
                f"stems of split {self.split!r} do not match across images/masks/labels: "
                + "; ".join(problems)
            )
        return sorted(every)

    def _read_label(self, path: Path) -> int:
        name = path.read_text(encoding="utf-8-sig").strip().lower()
        if name not in CLASSES:
            raise DatasetError(
                f"unknown class {name!r} in label file {path}; expected one of {', '.join(CLASSES)}"
            )
        return CLASSES.index(name)

    def _check_sizes(self, images: list[Image.Image], masks: list[Image.Image]) -> None:
        """Every mask matches its image, and every image the first (so batches stack)."""
        for path, image, mask_path, mask in zip(
            self.image_paths, images, self.mask_paths, masks, strict=True
        ):
            if mask.size != image.size:
                raise DatasetError(
                    f"mask {mask_path} is {mask.width}x{mask.height} but its image {path} is "
                    f"{image.width}x{image.height} (width x height); they must match"
                )
            if image.size != images[0].size:
                raise DatasetError(
                    f"image {path} is {image.width}x{image.height} but {self.image_paths[0]} is "
                    f"{images[0].width}x{images[0].height}; all images of a split must match"
                )

    def __len__(self) -> int:
        return len(self.stems)

    def __getitem__(self, index: int) -> tuple[Tensor, Tensor, Tensor]:
        image = torch.from_numpy(self._images[index]).permute(2, 0, 1).float().div_(255)
        if self.normalize:
            image = normalize_imagenet(image)
        label = torch.tensor(self.labels[index], dtype=torch.int64)
        return image, label, torch.from_numpy(self._masks[index])
