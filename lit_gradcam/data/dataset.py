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
listing them by problem, so a folder is fixed in one pass. The decoded pixels are kept, which
also spares the loaders any I/O.
"""

from __future__ import annotations

import glob
import io
import warnings
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageOps, UnidentifiedImageError
from torch import Tensor
from torch.utils.data import Dataset

from lit_gradcam.data import CLASSES
from lit_gradcam.data.pixels import PixelError, binary_mask, viewer_rgb
from lit_gradcam.imaging import image_tensor

KINDS = {"images": ".png", "masks": ".png", "labels": ".txt"}
#: How many bad files an error message lists per problem before "... and N more".
SHOWN = 20


class DatasetError(ValueError):
    """A dataset folder does not follow the shapes layout; the message names the culprits."""


class _Problems:
    """The bad files of one split, grouped by problem, to be reported in one DatasetError."""

    def __init__(self) -> None:
        self._groups: dict[str, list[tuple[Path, str]]] = {}

    def add(self, problem: str, path: Path, detail: str = "") -> None:
        self._groups.setdefault(problem, []).append((path, detail))

    def raise_any(self, split: str, root: Path) -> None:
        """Raise one DatasetError listing every problem (SHOWN per kind), if there is any."""
        if not self._groups:
            return
        count = len({path for found in self._groups.values() for path, _ in found})
        lines = [f"split {split!r} of {root} has {count} bad or missing file(s):"]
        for problem, found in self._groups.items():
            lines.append(f"- {len(found)} {problem}:")
            lines += [f"    {path}{detail}" for path, detail in sorted(found)[:SHOWN]]
            if len(found) > SHOWN:
                lines.append(f"    ... and {len(found) - SHOWN} more")
        raise DatasetError("\n".join(lines))


def _open(path: Path) -> Image.Image:
    """Read, verify (chunk CRCs), fully decode and turn upright (EXIF orientation, as viewers
    do, so a photo and its mask stay aligned) one image; raises whatever PIL raises."""
    data = path.read_bytes()
    if not data:
        raise ValueError("the file is empty (0 bytes)")
    try:
        probe = Image.open(io.BytesIO(data))
    except UnidentifiedImageError:  # its message names an in-memory buffer, not the file
        raise UnidentifiedImageError("no image format PIL reads matches its content") from None
    with probe:
        probe.verify()
    image = Image.open(io.BytesIO(data))
    image.load()
    ImageOps.exif_transpose(image, in_place=True)
    return image


def read_rgb(path: Path) -> tuple[np.ndarray, str]:
    """The image at `path` as a viewer shows it and its note (see `viewer_rgb`); DatasetError
    naming the file if it is broken or its pixels have no 8-bit reading."""
    try:
        image = _open(path)
    except Exception as error:  # PIL raises many types for broken files
        raise DatasetError(
            f"unreadable or truncated image {path}: {type(error).__name__}: {error}"
        ) from error
    try:
        return viewer_rgb(image)
    except PixelError as error:
        raise DatasetError(f"cannot read image {path}: {error}") from error


def _open_or_error(path: Path) -> Image.Image | Exception:
    try:
        return _open(path)
    except Exception as error:  # PIL raises many types for broken files
        return error


class ShapesFolder(Dataset):
    """One split of a shapes-layout folder: (image, label, mask) per stem, sorted by stem.

    image: float32 (3, H, W), ImageNet-normalised if `normalize` else in [0, 1];
    label: int64 index into CLASSES; mask: bool (H, W).
    """

    classes = CLASSES

    def __init__(self, root: str | Path, split: str, normalize: bool = True) -> None:
        self.root, self.split, self.normalize = Path(root), split, normalize
        folders = self._check_folders()
        files = self._list_files(folders)
        problems = _Problems()
        self.stems = self._complete_stems(folders, files, problems)
        labels = {stem: self._read_label(path, problems) for stem, path in files["labels"].items()}
        with ThreadPoolExecutor(max_workers=4) as pool:  # PIL decodes without the GIL
            images = self._decode_all(pool, files["images"], problems)
            masks = self._decode_all(pool, files["masks"], problems)
        self._check_sizes(files, images, masks, problems)
        rgbs = self._read_pixels(viewer_rgb, files["images"], images, problems)
        bools = self._read_pixels(binary_mask, files["masks"], masks, problems)
        problems.raise_any(self.split, self.root)
        self.image_paths = [files["images"][s] for s in self.stems]
        self.mask_paths = [files["masks"][s] for s in self.stems]
        self.labels = [labels[s] for s in self.stems]
        self._images = [rgbs[s][0] for s in self.stems]
        self._masks = [bools[s][0] for s in self.stems]
        self._warn_once(
            [files["images"][s] for s in self.stems if rgbs[s][1]],
            "image(s) with transparent pixels, composited over white as viewers show them",
        )
        self._warn_once(
            [files["masks"][s] for s in self.stems if bools[s][1]],
            "mask(s) hold intermediate values (more than two distinct values): every non-zero "
            "pixel counts as the shape, so a blended edge ring counts as shape",
        )

    def _check_folders(self) -> dict[str, Path]:
        if not self.root.is_dir():
            raise DatasetError(
                f"dataset folder {self.root} does not exist; expected the shapes layout "
                "images/{split}/, masks/{split}/, labels/{split}/ inside it"
            )
        folders = {kind: self.root / kind / self.split for kind in KINDS}
        missing = [str(folder) for folder in folders.values() if not folder.is_dir()]
        if missing:
            # an archive extracted with its top folder: the layout is one level down
            inside = sorted(
                sub for sub in self.root.iterdir() if (sub / "images" / self.split).is_dir()
            )
            hint = f"; {inside[0]} holds it: pass that as the root (--data.root)" if inside else ""
            raise DatasetError(
                f"split {self.split!r} of {self.root} is missing folder(s) {', '.join(missing)}; "
                f"expected images/{self.split}/, masks/{self.split}/ and labels/{self.split}/"
                + hint
            )
        return folders

    def _list_files(self, folders: dict[str, Path]) -> dict[str, dict[str, Path]]:
        """Per kind, stem -> file; DatasetError if the split holds no file at all. Hidden files
        (a name starting with '.', such as the `._x.png` resource forks a macOS archive adds)
        are left out, as glob and file browsers leave them, with one warning per split."""
        files: dict[str, dict[str, Path]] = {}
        hidden = []
        for kind, folder in folders.items():
            files[kind] = {}
            for p in sorted(folder.iterdir()):
                if p.suffix.lower() != KINDS[kind] or not p.is_file():
                    continue
                if p.name.startswith("."):
                    hidden.append(p)
                else:
                    files[kind][p.stem] = p
        self._warn_once(hidden, "hidden file(s) left out")
        if not any(files.values()):
            raise DatasetError(
                f"split {self.split!r} of {self.root} is empty: no .png images in "
                f"{folders['images']}"
            )
        return files

    @staticmethod
    def _complete_stems(
        folders: dict[str, Path], files: dict[str, dict[str, Path]], problems: _Problems
    ) -> list[str]:
        """Stems present in all three folders; each file another folder lacks is a problem."""
        every = set().union(*files.values())
        for kind, found in files.items():
            for stem in sorted(every - found.keys()):
                present = next(files[other][stem] for other in KINDS if stem in files[other])
                others = sorted(p.name for p in folders[kind].glob(f"{glob.escape(stem)}.*"))
                instead = f"; {', '.join(others)} is there, not {KINDS[kind]}" if others else ""
                problems.add(
                    "missing file(s) (their stem is in another folder)",
                    folders[kind] / f"{stem}{KINDS[kind]}",
                    f" ({present} exists{instead})",
                )
        return sorted(set.intersection(*(set(found) for found in files.values())))

    @staticmethod
    def _read_label(path: Path, problems: _Problems) -> int | None:
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
        pool: ThreadPoolExecutor, paths: dict[str, Path], problems: _Problems
    ) -> dict[str, Image.Image]:
        """Stem -> decoded image, for the files that decode; the others are problems."""
        decoded = {}
        for (stem, path), image in zip(
            paths.items(), pool.map(_open_or_error, paths.values()), strict=True
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
        problems: _Problems,
    ) -> dict[str, tuple[np.ndarray, str | bool]]:
        """Stem -> `read` of its decoded image; pixels with no defined reading are problems."""
        found = {}
        for stem, image in decoded.items():
            try:
                found[stem] = read(image)
            except PixelError as error:
                problems.add(error.problem, paths[stem], f": {error}")
        return found

    def _warn_once(self, paths: list[Path], what: str) -> None:
        """One warning for the split: how many files `what`, and the first of them."""
        if paths:
            warnings.warn(
                f"split {self.split!r} of {self.root}: {len(paths)} {what} (first: {paths[0]})",
                stacklevel=3,
            )

    @staticmethod
    def _check_sizes(
        files: dict[str, dict[str, Path]],
        images: dict[str, Image.Image],
        masks: dict[str, Image.Image],
        problems: _Problems,
    ) -> None:
        """Every mask matches its image, and every image the split's usual size (so batches
        stack); the odd ones out are problems."""
        for stem in images.keys() & masks.keys():
            image, mask = images[stem], masks[stem]
            if mask.size != image.size:
                problems.add(
                    "mask(s) whose size is not their image's (width x height)",
                    files["masks"][stem],
                    f" is {mask.width}x{mask.height}, its image {files['images'][stem]} "
                    f"is {image.width}x{image.height}",
                )
        if not images:
            return
        (width, height), _ = Counter(image.size for image in images.values()).most_common(1)[0]
        for stem, image in images.items():
            if image.size != (width, height):
                problems.add(
                    f"image(s) not of the split's usual size {width}x{height} (width x height; "
                    "all images of a split must match)",
                    files["images"][stem],
                    f" is {image.width}x{image.height}",
                )

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
