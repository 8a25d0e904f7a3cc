"""ImageFolder: every image (PNG, JPEG, WebP, BMP, TIFF) in a folder, any size, for
`python main.py predict`; it lists every other entry with why it is not read.

Each item carries the picture twice: resized to the classifier's training resolution
(normalised) and at its original size (uint8), so Grad-CAM runs where the classifier learned
and the mask is cut at the size the user gave. A file that cannot be decoded does not stop the
run: its item carries the error, and the writer reports it.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch.utils.data import Dataset

from lit_gradcam.data.backgrounds import HEIGHT, WIDTH
from lit_gradcam.data.dataset import DatasetError, read_rgb
from lit_gradcam.data.layout import IMAGE_SUFFIXES
from lit_gradcam.imaging import normalize_imagenet


def list_folder(folder: Path) -> tuple[list[Path], list[tuple[str, str]]]:
    """The images directly inside `folder`, and (name, why) for every other entry, both
    sorted by name; the writer lists the others in the CSV, so nothing is skipped silently."""
    images, skipped = [], []
    for path in sorted(folder.iterdir()):
        reason = _not_read(path)
        if reason:
            skipped.append((path.name, reason))
        else:
            images.append(path)
    return images, skipped


def _not_read(path: Path) -> str:
    """Why predict does not read the entry `path`; "" for an image it reads."""
    if path.is_dir():
        return "a folder (predict reads the files directly inside predict_dir)"
    if not path.exists():  # follows links: only a link can be listed and not exist
        return "a symbolic link to a missing file"
    if not path.is_file():
        return "not a regular file (a pipe, socket or device)"
    if path.suffix.lower() not in IMAGE_SUFFIXES:
        return (
            f"not an image this tool reads ({path.suffix or 'no suffix'}); it reads "
            f"{', '.join(IMAGE_SUFFIXES)}"
        )
    return ""


#: Longest output stem, in UTF-8 bytes: with a clash number and the writer's suffix
#: (`_overlay.png`) it stays within the 255-byte file names of common file systems.
MAX_STEM_BYTES = 200


def output_stems(names: list[str]) -> list[str]:
    """Output names for the files `names` of one folder, unique even ignoring case (as on
    macOS and Windows file systems), the same for the same names: the stem; where stems clash
    (a.png, a.jpg, A.png), the name with '.' -> '_'; where that clashes too, that plus _2, _3.
    Each is cut to `MAX_STEM_BYTES` first (a cut that makes two alike gets a number)."""
    stems = [_cut(Path(name).stem) for name in names]
    whole = [_cut(name.replace(".", "_")) for name in names]
    result: list[str | None] = [None] * len(names)
    taken: set[str] = set()  # casefolded
    for candidates in (stems, whole):
        open_ = [i for i, chosen in enumerate(result) if chosen is None]
        counts = Counter(candidates[i].casefold() for i in open_)
        for i in open_:
            key = candidates[i].casefold()
            if counts[key] == 1 and key not in taken:
                result[i] = candidates[i]
                taken.add(key)
    for i in (i for i, chosen in enumerate(result) if chosen is None):
        number = 2
        while f"{whole[i]}_{number}".casefold() in taken:
            number += 1
        result[i] = f"{whole[i]}_{number}"
        taken.add(result[i].casefold())
    return result


def _cut(text: str) -> str:
    """`text` cut to at most `MAX_STEM_BYTES` UTF-8 bytes, on a character boundary."""
    return text.encode()[:MAX_STEM_BYTES].decode(errors="ignore")


class ImageFolder(Dataset):
    """The images directly inside `folder`, sorted by name.

    size: (height, width) the classifier was trained at.
    """

    def __init__(self, folder: str | Path, size: tuple[int, int] = (HEIGHT, WIDTH)) -> None:
        self.folder = Path(folder)
        if not self.folder.is_dir():
            raise DatasetError(f"predict_dir {self.folder} is not a folder of images")
        try:
            #: (name, why) of each entry that is not read: the writer lists them in the CSV.
            self.paths, self.skipped = list_folder(self.folder)
        except OSError as error:
            raise DatasetError(f"predict_dir {self.folder} cannot be read: {error}") from error
        if not self.paths:
            names = [name for name, _ in self.skipped]
            found = f"only {', '.join(names[:5])}{', ...' if len(names) > 5 else ''}"
            raise DatasetError(
                f"predict_dir {self.folder} holds no image ({', '.join(IMAGE_SUFFIXES)}), "
                f"{found if names else 'nothing at all'}"
            )
        self.size = tuple(size)
        #: Output names, unique even ignoring case (see `output_stems`).
        self.output_stems = output_stems([p.name for p in self.paths])

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, index: int) -> dict[str, Any]:
        path = self.paths[index]
        item = {"name": path.name, "stem": self.output_stems[index], "error": "", "note": ""}
        try:
            pixels, item["note"] = read_rgb(path)
            original = torch.from_numpy(pixels).permute(2, 0, 1).contiguous()
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
    """Stack the resized images; keep originals (of any size), names, errors and notes as
    lists."""
    return {
        "image": torch.stack([item["image"] for item in items]),
        "original": [item["original"] for item in items],
        "name": [item["name"] for item in items],
        "stem": [item["stem"] for item in items],
        "error": [item["error"] for item in items],
        "note": [item["note"] for item in items],
    }
