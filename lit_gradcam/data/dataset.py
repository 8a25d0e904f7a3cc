"""ShapesFolder: reads one split of any folder in the shapes layout, validated up front.

    ROOT/classes.txt                 optional: one class name per line, in label-index order
    ROOT/images/{split}/{stem}.png   8-bit (grey, palette, RGB, RGBA, ...) or 16-bit grey
    ROOT/masks/{split}/{stem}.png    without classes.txt: binary, grey, palette or RGB;
                                     with it: an index mask, grey or palette
    ROOT/labels/{split}/{stem}.txt   the class the image holds; with classes.txt, every class it
                                     holds, one per line

A folder without classes.txt is the course's: the five `CLASSES`, one class per image, binary
masks. With classes.txt, its classes are the folder's, masks are VOC-style index masks (0
background, i the i-th class, 255 ignored) and each label file names exactly the classes its mask
holds (class list and label files: `lit_gradcam.data.classes`).

Images are read as a viewer shows them, binary masks as the reference loader
`np.array(Image.open(mask), dtype=bool)` reads them (details in `lit_gradcam.data.pixels`):
- images and masks alike are turned upright by their EXIF orientation;
- images are served as RGB; 16-bit grey is scaled from 0..65535 to 0..255; an image with any
  pixel not fully opaque is composited over white (one warning per split), a fully opaque alpha
  is dropped; a mode with no 8-bit meaning (F, ...) is a bad file;
- a binary mask's shape is its non-zero pixels: the value of grey masks (1, L, I, I;16, F), the
  index of palette masks (not its colour), any channel of RGB masks; a fully opaque alpha is
  dropped, a mask with any pixel not fully opaque is a bad file;
- a soft binary mask (more than two distinct values, e.g. an antialiased edge) still counts every
  non-zero pixel as the shape, the blended ring included (one warning per split);
- an index mask is the value of a grey mask, the index of a palette mask; colour masks and
  transparency are bad files.

Broken data should fail before training starts rather than as a crash in a loader worker hours
in, and all at once: __init__ reads every file once, collects every bad one (missing, unknown
class, unreadable, wrong size, pixels with no defined reading, labels disagreeing with their
mask) and raises a single DatasetError listing them by problem, so a folder is fixed in one pass
(the layout's checks are in `layout`, the decoding of a file in `decoding`); an unusable
classes.txt is an error of its own, before any file is read. The decoded pixels are kept, which
also spares the loaders any I/O.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TypeVar

import numpy as np
import torch
from PIL import Image
from torch import Tensor
from torch.utils.data import Dataset

from lit_gradcam.data.classes import FolderClasses, LabelError
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
from lit_gradcam.data.pixels import IGNORED, PixelError, binary_mask, index_mask, viewer_rgb
from lit_gradcam.data.resizing import resized_image, resized_mask
from lit_gradcam.imaging import image_tensor

__all__ = ["DatasetError", "ShapesFolder", "read_rgb"]

Source = TypeVar("Source")
Read = TypeVar("Read")


class ShapesFolder(Dataset):
    """One split of a shapes-layout folder: (image, target, mask) per stem, sorted by stem.

    image: float32 (3, H, W), ImageNet-normalised if `normalize` else in [0, 1];
    target: int64 index into `classes`, or, when `multi_label`, a float32 multi-hot (C,);
    mask: bool (H, W), or, when `semantic`, a uint8 (H, W) index mask (0 background, i the
    class i - 1, 255 ignored).
    size: (height, width) every image and mask is read at (`resizing`), so that a folder of
    images of several sizes, or of large photos, serves one size; None: their own size, which
    every image of the split must share.

    classes: the folder's class names (classes.txt, or CLASSES without it);
    semantic: whether the folder has a classes.txt (index masks);
    multi_label: whether a label file of any split of the folder lists several classes or none
    (classes.txt folders only), so that every split of one folder serves the same target format;
    empty_images: whether a label file of any split lists no class (an image of none of the
    classes: the classifier may then find none);
    labels: per item, its class index (int), or when `multi_label` the tuple of its indices.
    """

    def __init__(
        self,
        root: str | Path,
        split: str,
        normalize: bool = True,
        size: tuple[int, int] | None = None,
    ) -> None:
        self.root, self.split, self.normalize = Path(root), split, normalize
        folders = check_folders(self.root, split)
        found = FolderClasses.of(self.root)
        self.classes, self.semantic = found.names, found.semantic
        problems = Problems()
        files = list_files(self.root, split, folders, problems)
        self.stems = complete_stems(folders, files, problems)
        labels = self._read_all(found.read_label, files["labels"], files["labels"], problems)
        with ThreadPoolExecutor(max_workers=4) as pool:  # PIL decodes without the GIL
            images = self._decode_all(pool, files["images"], problems)
            masks = self._decode_all(pool, files["masks"], problems)
        check_sizes(files, images, masks, problems, one_size=size is None)
        rgbs = self._read_all(viewer_rgb, files["images"], images, problems)
        if self.semantic:
            pixels = self._read_all(index_mask, files["masks"], masks, problems)
            self._check_agreement(found, files, labels, pixels, problems)
            soft = set()
        else:
            binary = self._read_all(binary_mask, files["masks"], masks, problems)
            pixels = {stem: mask for stem, (mask, _) in binary.items()}
            soft = {stem for stem, (_, is_soft) in binary.items() if is_soft}
        problems.raise_any(self.split, self.root)
        sizes = {len(labels[s]) for s in self.stems}  # how many classes the labels list
        if self.semantic:
            sizes |= found.label_sizes(self.root, split)
        self.empty_images = 0 in sizes
        self.multi_label = self.semantic and bool(sizes - {1})
        self.labels = [labels[s] if self.multi_label else labels[s][0] for s in self.stems]
        self.image_paths = [files["images"][s] for s in self.stems]
        self.mask_paths = [files["masks"][s] for s in self.stems]
        self._images = [rgbs[s][0] for s in self.stems]
        self._masks = [pixels[s] for s in self.stems]
        if size is not None:
            self._images = [resized_image(image, size) for image in self._images]
            self._masks = [resized_mask(mask, size) for mask in self._masks]
        warn_once(
            self.root,
            self.split,
            [files["images"][s] for s in self.stems if rgbs[s][1]],
            "image(s) with transparent pixels, composited over white as viewers show them",
        )
        warn_once(
            self.root,
            self.split,
            [files["masks"][s] for s in self.stems if s in soft],
            "mask(s) hold intermediate values (more than two distinct values): every non-zero "
            "pixel counts as the shape, so a blended edge ring counts as shape",
        )

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
    def _read_all(
        read: Callable[[Source], Read],
        paths: dict[str, Path],
        sources: dict[str, Source],
        problems: Problems,
    ) -> dict[str, Read]:
        """Stem -> `read` of its source (a decoded image, or the label file itself); sources
        with no defined reading are problems naming their file."""
        found = {}
        for stem, source in sources.items():
            try:
                found[stem] = read(source)
            except (PixelError, LabelError) as error:
                problems.add(error.problem, paths[stem], f": {error}" if str(error) else "")
        return found

    @staticmethod
    def _check_agreement(
        found: FolderClasses,
        files: dict[str, dict[str, Path]],
        labels: dict[str, tuple[int, ...]],
        masks: dict[str, np.ndarray],
        problems: Problems,
    ) -> None:
        """Each index mask holds only classes of the folder, and exactly those its label lists;
        the others are problems."""
        present = ShapesFolder._read_all(found.mask_classes, files["masks"], masks, problems)
        for stem in present.keys() & labels.keys():
            if present[stem] == labels[stem]:
                continue
            listed = f" lists {found.describe(labels[stem])}; its mask {files['masks'][stem]} "
            shape = set(np.unique(masks[stem]).tolist()) - {0}
            if shape in ({IGNORED}, {1}):  # a course-style mask: 255 or 1 for "the object"
                problems.add(
                    "label(s) whose mask looks binary (0 and one other value), where classes.txt "
                    "asks for index masks: each object's pixels hold its class's line number in "
                    f"classes.txt (1 for the first), 0 background, {IGNORED} ignored",
                    files["labels"][stem],
                    listed + f"holds only 0 and {shape.pop()}",
                )
                continue
            problems.add(
                "label(s) that disagree with their mask's classes",
                files["labels"][stem],
                listed + f"holds {found.describe(present[stem])}",
            )

    @property
    def image_size(self) -> tuple[int, int]:
        """(height, width) of every image of the split."""
        return tuple(self._images[0].shape[:2]) if self._images else (0, 0)

    def __len__(self) -> int:
        return len(self.stems)

    def __getitem__(self, index: int) -> tuple[Tensor, Tensor, Tensor]:
        image = image_tensor(torch.from_numpy(self._images[index]), self.normalize)
        if self.multi_label:
            target = torch.zeros(len(self.classes), dtype=torch.float32)
            target[list(self.labels[index])] = 1.0
        else:
            target = torch.tensor(self.labels[index], dtype=torch.int64)
        return image, target, torch.from_numpy(self._masks[index])
