"""ImageFolder: every PNG/JPEG in a folder, any size, for `python main.py predict`.

Each item carries the picture twice: resized to the classifier's training resolution
(normalised) and at its original size (uint8), so Grad-CAM runs where the classifier learned
and the mask is cut at the size the user gave. A file that cannot be decoded does not stop the
run: its item carries the error, and the writer reports it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch.utils.data import Dataset

from lit_gradcam.data.dataset import DatasetError, _decode, _rgb
from lit_gradcam.imaging import normalize_imagenet

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")


class ImageFolder(Dataset):
    """The images directly inside `folder`, sorted by name.

    size: (height, width) the classifier was trained at.
    """

    def __init__(self, folder: str | Path, size: tuple[int, int] = (48, 64)) -> None:
        self.folder = Path(folder)
        if not self.folder.is_dir():
            raise DatasetError(f"predict_dir {self.folder} is not a folder of images")
        try:
            self.paths = sorted(
                p
                for p in self.folder.iterdir()
                if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES
            )
        except OSError as error:
            raise DatasetError(f"predict_dir {self.folder} cannot be read: {error}") from error
        if not self.paths:
            raise DatasetError(
                f"predict_dir {self.folder} holds no image ({', '.join(IMAGE_SUFFIXES)})"
            )
        self.size = tuple(size)
        stems = [p.stem for p in self.paths]
        #: Output names: the stem, or the whole name where two files share a stem (a.png, a.jpg).
        self.output_stems = [
            p.name.replace(".", "_") if stems.count(p.stem) > 1 else p.stem for p in self.paths
        ]

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, index: int) -> dict[str, Any]:
        path = self.paths[index]
        item = {"name": path.name, "stem": self.output_stems[index], "error": ""}
        try:
            original = torch.from_numpy(_rgb(_decode(path))).permute(2, 0, 1).contiguous()
        except DatasetError as error:
            item["error"] = str(error)
            original = torch.zeros(3, *self.size, dtype=torch.uint8)
        item["original"] = original
        item["image"] = normalize_resized(original, self.size)
        return item


def normalize_resized(image: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """uint8 (3, h, w) -> ImageNet-normalised float (3, *size), bilinear with antialiasing."""
    x = image[None].float() / 255
    if tuple(x.shape[-2:]) != tuple(size):
        x = F.interpolate(x, size=size, mode="bilinear", antialias=True, align_corners=False)
    return normalize_imagenet(x.clamp(0, 1))[0]


def collate_images(items: list[dict[str, Any]]) -> dict[str, Any]:
    """Stack the resized images; keep originals (of any size), names and errors as lists."""
    return {
        "image": torch.stack([item["image"] for item in items]),
        "original": [item["original"] for item in items],
        "name": [item["name"] for item in items],
        "stem": [item["stem"] for item in items],
        "error": [item["error"] for item in items],
    }
