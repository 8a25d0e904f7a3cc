"""ShapesFolder: reads one split of any folder in the shapes layout, validated up front.

    ROOT/images/{split}/{stem}.png   8-bit (grey, palette, RGB, RGBA, ...) or 16-bit grey
    ROOT/masks/{split}/{stem}.png    grey, palette or RGB, without transparency
    ROOT/labels/{split}/{stem}.txt   a class name from CLASSES

Images are read as a viewer shows them, masks as the reference loader
`np.array(Image.open(mask), dtype=bool)` reads them (details in `lit_gradcam.data.pixels`):
- images and masks alike are turned upright by their EXIF orientation;
- images are served as RGB; 16-bit grey is scaled from 0..65535 to 0..255; an image with any
  pixel not fully opaque is composited over white (one warning per split), a fully opaque alpha
  is dropped; a mode with no 8-bit meaning (F, ...) is a bad file;
- a mask's shape is its non-zero pixels: the value of grey masks (1, L, I, I;16, F), the index
  of palette masks (not its colour), any channel of RGB masks; a fully opaque alpha is dropped,
  a mask with any pixel not fully opaque is a bad file;
- a soft mask (more than two distinct values, e.g. an antialiased edge) still counts every
  non-zero pixel as the shape, the blended ring included (one warning per split).

Broken data should fail before training starts rather than as a crash in a loader worker hours
in, and all at once: __init__ reads every file once, collects every bad one (missing, unknown
class, unreadable, wrong size, pixels with no defined reading) and raises a single DatasetError
listing them by problem, so a folder is fixed in one pass (the layout's checks are in
`layout`, the decoding of a file in `decoding`). The decoded pixels are kept, which also spares
the loaders any I/O.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch import Tensor
from torch.utils.data import Dataset

from lit_gradcam.data import CLASSES
from lit_gradcam.data.decoding import open_or_error, read_rgb
from lit_gradcam.data.layout import (
    DatasetError,
    Problems,
    check_folders,
    check_sizes,
    complete_stems,
    list_files,
    warn_once,
)
from lit_gradcam.data.pixels import PixelError, binary_mask, viewer_rgb
from lit_gradcam.imaging import image_tensor

__all__ = ["DatasetError", "ShapesFolder", "read_rgb"]


class ShapesFolder(Dataset):
    """One split of a shapes-layout folder: (image, label, mask) per stem, sorted by stem.

    image: float32 (3, H, W), ImageNet-normalised if `normalize` else in [0, 1];
    label: int64 index into CLASSES; mask: bool (H, W).
    """

    classes = CLASSES

    def __init__(self, root: str | Path, split: str, normalize: bool = True) -> None:
        self.root, self.split, self.normalize = Path(root), split, normalize
        folders = check_folders(self.root, split)
        files = list_files(self.root, split, folders)
        problems = Problems()
        self.stems = complete_stems(folders, files, problems)
        labels = {stem: self._read_label(path, problems) for stem, path in files["labels"].items()}
        with ThreadPoolExecutor(max_workers=4) as pool:  # PIL decodes without the GIL
            images = self._decode_all(pool, files["images"], problems)
            masks = self._decode_all(pool, files["masks"], problems)
        check_sizes(files, images, masks, problems)
        rgbs = self._read_pixels(viewer_rgb, files["images"], images, problems)
        bools = self._read_pixels(binary_mask, files["masks"], masks, problems)
        problems.raise_any(self.split, self.root)
        self.image_paths = [files["images"][s] for s in self.stems]
        self.mask_paths = [files["masks"][s] for s in self.stems]
        self.labels = [labels[s] for s in self.stems]
        self._images = [rgbs[s][0] for s in self.stems]
        self._masks = [bools[s][0] for s in self.stems]
        warn_once(
            self.root,
            self.split,
            [files["images"][s] for s in self.stems if rgbs[s][1]],
            "image(s) with transparent pixels, composited over white as viewers show them",
        )
        warn_once(
            self.root,
            self.split,
            [files["masks"][s] for s in self.stems if bools[s][1]],
            "mask(s) hold intermediate values (more than two distinct values): every non-zero "
            "pixel counts as the shape, so a blended edge ring counts as shape",
        )

    @staticmethod
    def _read_label(path: Path, problems: Problems) -> int | None:
        try:
            name = path.read_text(encoding="utf-8-sig").strip().lower()
        except (OSError, UnicodeDecodeError) as error:
            problems.add("unreadable label file(s)", path, f": {type(error).__name__}: {error}")
            return None
        if name not in CLASSES:
            problems.add(
                f"label(s) naming an unknown class (expected one of {', '.join(CLASSES)})",
                path,
                f": {name!r}",
            )
            return None
        return CLASSES.index(name)

    @staticmethod
    def _decode_all(
        pool: ThreadPoolExecutor, paths: dict[str, Path], problems: Problems
    ) -> dict[str, Image.Image]:
        """Stem -> decoded image, for the files that decode; the others are problems."""
        decoded = {}
        for (stem, path), image in zip(
            paths.items(), pool.map(open_or_error, paths.values()), strict=True
        ):
            if isinstance(image, Exception):
                problems.add(
                    "unreadable or truncated image(s)", path, f": {type(image).__name__}: {image}"
                )
            else:
                decoded[stem] = image
        return decoded

    @staticmethod
    def _read_pixels(
        read: Callable[[Image.Image], tuple[np.ndarray, str | bool]],
        paths: dict[str, Path],
        decoded: dict[str, Image.Image],
        problems: Problems,
    ) -> dict[str, tuple[np.ndarray, str | bool]]:
        """Stem -> `read` of its decoded image; pixels with no defined reading are problems."""
        found = {}
        for stem, image in decoded.items():
            try:
                found[stem] = read(image)
            except PixelError as error:
                problems.add(error.problem, paths[stem], f": {error}")
        return found

    @property
    def image_size(self) -> tuple[int, int]:
        """(height, width) of every image of the split."""
        return tuple(self._images[0].shape[:2]) if self._images else (0, 0)

    def __len__(self) -> int:
        return len(self.stems)

    def __getitem__(self, index: int) -> tuple[Tensor, Tensor, Tensor]:
        image = image_tensor(torch.from_numpy(self._images[index]), self.normalize)
        label = torch.tensor(self.labels[index], dtype=torch.int64)
        return image, label, torch.from_numpy(self._masks[index])
