"""The shapes layout of a dataset split, checked before anything is decoded: its folders, its
files per kind, the stems all three kinds hold, and image and mask sizes; and `Problems`, which
collects every bad file of a split into one `DatasetError`.

    ROOT/images/{split}/{stem}.png   (or any of IMAGE_SUFFIXES: a user's photos are often JPEG)
    ROOT/masks/{split}/{stem}.png    (lossless: a JPEG would blur class indices)
    ROOT/labels/{split}/{stem}.txt
"""

from __future__ import annotations

import glob
import warnings
from collections import Counter
from pathlib import Path

from PIL import Image, features

from lit_gradcam.errors import UserError

#: The image suffixes read (in any case): what PIL decodes here, WebP where this Pillow has it.
IMAGE_SUFFIXES = (
    ".png",
    ".jpg",
    ".jpeg",
    *((".webp",) if features.check("webp") else ()),
    ".bmp",
    ".tif",
    ".tiff",
)
#: Per kind, the suffixes its files may have; the first is the one a missing file is named by.
KINDS = {"images": IMAGE_SUFFIXES, "masks": (".png",), "labels": (".txt",)}
#: How many bad files an error message lists per problem before "... and N more".
SHOWN = 20


class DatasetError(UserError, ValueError):
    """A dataset folder does not follow the shapes layout; the message names the culprits."""


class Problems:
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


def check_folders(root: Path, split: str) -> dict[str, Path]:
    """Per kind, the split's folder; DatasetError if the root or one of them is missing."""
    if not root.is_dir():
        raise DatasetError(
            f"dataset folder {root} does not exist; expected the shapes layout "
            "images/{split}/, masks/{split}/, labels/{split}/ inside it"
        )
    folders = {kind: root / kind / split for kind in KINDS}
    missing = [str(folder) for folder in folders.values() if not folder.is_dir()]
    if missing:
        # an archive extracted with its top folder: the layout is one level down
        inside = sorted(sub for sub in root.iterdir() if (sub / "images" / split).is_dir())
        hint = f"; {inside[0]} holds it: pass that as the root (--data.root)" if inside else ""
        raise DatasetError(
            f"split {split!r} of {root} is missing folder(s) {', '.join(missing)}; "
            f"expected images/{split}/, masks/{split}/ and labels/{split}/" + hint
        )
    return folders


def list_files(
    root: Path, split: str, folders: dict[str, Path], problems: Problems
) -> dict[str, dict[str, Path]]:
    """Per kind, stem -> file; DatasetError if the split holds no file at all. Hidden files
    (a name starting with '.', such as the `._x.png` resource forks a macOS archive adds)
    are left out, as glob and file browsers leave them, with one warning per split; files
    sharing a stem within a folder (a.png and a.jpg) are problems."""
    files: dict[str, dict[str, Path]] = {}
    hidden = []
    for kind, folder in folders.items():
        files[kind], left_out, clashing = folder_files(folder, KINDS[kind])
        hidden += left_out
        for path in clashing:
            problems.add(
                "file(s) whose stem another file of their folder has (one file per stem)",
                path,
                f" (and {files[kind][path.stem].name})",
            )
    warn_once(root, split, hidden, "hidden file(s) left out")
    if not any(files.values()):
        raise DatasetError(
            f"split {split!r} of {root} is empty: no images ({', '.join(IMAGE_SUFFIXES)}) in "
            f"{folders['images']}"
        )
    return files


def folder_files(
    folder: Path, suffixes: tuple[str, ...]
) -> tuple[dict[str, Path], list[Path], list[Path]]:
    """The files of `folder` ending in one of `suffixes` (any case), sorted: stem -> file for
    the visible ones, the hidden ones (a name starting with '.'), and the visible ones whose
    stem an earlier file already has."""
    visible, hidden, clashing = {}, [], []
    for path in sorted(folder.iterdir()):
        if path.suffix.lower() not in suffixes or not path.is_file():
            continue
        if path.name.startswith("."):
            hidden.append(path)
        elif path.stem in visible:
            clashing.append(path)
        else:
            visible[path.stem] = path
    return visible, hidden, clashing


def complete_stems(
    folders: dict[str, Path], files: dict[str, dict[str, Path]], problems: Problems
) -> list[str]:
    """Stems present in all three folders; each file another folder lacks is a problem."""
    every = set().union(*files.values())
    for kind, found in files.items():
        for stem in sorted(every - found.keys()):
            present = next(files[other][stem] for other in KINDS if stem in files[other])
            others = sorted(p.name for p in folders[kind].glob(f"{glob.escape(stem)}.*"))
            wanted = "/".join(KINDS[kind])
            instead = f"; {', '.join(others)} is there, not {wanted}" if others else ""
            problems.add(
                "missing file(s) (their stem is in another folder)",
                folders[kind] / f"{stem}{KINDS[kind][0]}",
                f" ({present} exists{instead})",
            )
    return sorted(set.intersection(*(set(found) for found in files.values())))


def check_sizes(
    files: dict[str, dict[str, Path]],
    images: dict[str, Image.Image],
    masks: dict[str, Image.Image],
    problems: Problems,
    one_size: bool,
) -> None:
    """Every mask matches its image and, when `one_size` (the images are read at their own
    size), every image the split's usual size, so batches stack; the odd ones out are
    problems."""
    for stem in images.keys() & masks.keys():
        image, mask = images[stem], masks[stem]
        if mask.size != image.size:
            problems.add(
                "mask(s) whose size is not their image's (width x height)",
                files["masks"][stem],
                f" is {mask.width}x{mask.height}, its image {files['images'][stem]} "
                f"is {image.width}x{image.height}",
            )
    if not images or not one_size:
        return
    (width, height), _ = Counter(image.size for image in images.values()).most_common(1)[0]
    for stem, image in images.items():
        if image.size != (width, height):
            problems.add(
                f"image(s) not of the split's usual size {width}x{height} (width x height; "
                "all images of a split must match, or set data.image_size to read every image "
                "at one size)",
                files["images"][stem],
                f" is {image.width}x{image.height}",
            )


def warn_once(root: Path, split: str, paths: list[Path], what: str) -> None:
    """One warning for the split: how many files `what`, and the first of them."""
    if paths:
        warnings.warn(
            f"split {split!r} of {root}: {len(paths)} {what} (first: {paths[0]})",
            stacklevel=3,
        )
