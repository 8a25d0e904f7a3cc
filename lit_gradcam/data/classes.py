"""The classes of a dataset folder, its label files, and how labels and index masks agree.

    ROOT/classes.txt                 optional: one class name per line, in label-index order
    ROOT/labels/{split}/{stem}.txt   one class name per line: each class the image holds, once;
                                     with classes.txt, an empty file: the image holds none

classes.txt is read as utf-8 (a BOM tolerated); each line is stripped and blank lines are
skipped. Its i-th name is label index i - 1 and mask value i: 0 is background, so no class may be
called 'background' (a VOC list starting with it must drop that line, or every class would shift
by one), and 255 is 'ignored', so it names at most 254 classes. A folder without it has the
course's five `CLASSES` and binary masks, and each of its label files names one class.

Names match case-insensitively (one generator writes "circle", another "Circle"); the names of
classes.txt are kept as written, for display.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from lit_gradcam.data import CLASSES
from lit_gradcam.data.layout import KINDS, DatasetError, folder_files
from lit_gradcam.data.pixels import IGNORED

CLASSES_FILE = "classes.txt"
#: How many class names a message lists before '...'.
NAMES_SHOWN = 10
BACKGROUND = "background"


class LabelError(ValueError):
    """A label file or mask that does not fit the folder's classes. `problem` names the kind, for
    grouping bad files; the message says what is wrong with this one."""

    def __init__(self, problem: str, message: str) -> None:
        super().__init__(message)
        self.problem = problem


class FolderClasses:
    """The classes of one folder: `names` in label-index order, and `semantic`, whether they
    come from classes.txt (whose masks are index masks and whose labels may list several)."""

    def __init__(self, names: tuple[str, ...], file: Path | None) -> None:
        self.names, self.file, self.semantic = names, file, file is not None
        self._index = {name.casefold(): i for i, name in enumerate(names)}

    @classmethod
    def of(cls, root: Path) -> FolderClasses:
        """ROOT/classes.txt's classes, or the course's CLASSES without it; DatasetError naming
        classes.txt and what it should hold if it is unusable."""
        path = root / CLASSES_FILE
        if not path.exists():
            return cls(CLASSES, None)
        expected = (
            "expected one class name per line, in label-index order: line i names mask value i, "
            f"0 is background and {IGNORED} ignored"
        )
        try:
            text = path.read_text(encoding="utf-8-sig")
        except (OSError, UnicodeDecodeError) as error:
            raise DatasetError(
                f"{path} cannot be read ({type(error).__name__}: {error}); {expected}"
            ) from error
        numbered = [(n, line.strip()) for n, line in enumerate(text.splitlines(), 1)]
        lines = [(n, name) for n, name in numbered if name]
        issues = [] if lines else ["it names no class (it is empty or blank)"]
        if len(lines) > IGNORED - 1:
            issues.append(
                f"it names {len(lines)} classes, more than {IGNORED - 1} (mask values "
                f"1..{IGNORED - 1} name classes, {IGNORED} is 'ignored')"
            )
        seen: dict[str, list[int]] = {}
        for n, name in lines:
            seen.setdefault(name.casefold(), []).append(n)
        for n, name in lines:
            if name.casefold() == BACKGROUND:
                issues.append(
                    f"line {n} names {name!r}: mask value 0 is always background; list only the "
                    "object classes, the first one being mask value 1"
                )
            elif len(seen[name.casefold()]) > 1 and seen[name.casefold()][0] == n:
                at = ", ".join(map(str, seen[name.casefold()]))
                issues.append(f"{name!r} is named more than once (lines {at}; case is ignored)")
        if issues:
            raise DatasetError(
                f"{path} is not a usable class list ({expected}):\n"
                + "\n".join(f"- {issue}" for issue in issues)
            )
        return cls(tuple(name for _, name in lines), path)

    def expected(self) -> str:
        """The class names for a message: at most NAMES_SHOWN, then '...'."""
        shown = ", ".join(self.names[:NAMES_SHOWN])
        if len(self.names) <= NAMES_SHOWN:
            return shown
        return f"{shown}, ... ({len(self.names)} classes, see {self.file})"

    def describe(self, indices: tuple[int, ...]) -> str:
        """Class indices as names, for a message."""
        return ", ".join(self.names[i] for i in indices) or "no class"

    def read_label(self, path: Path) -> tuple[int, ...]:
        """The class indices a label file lists, ascending (none for an empty file of a folder
        with classes.txt: an image of none of its classes); LabelError if it is unreadable,
        names an unknown class or a class twice, or, in a folder without classes.txt, is empty
        or lists several classes."""
        try:
            text = path.read_text(encoding="utf-8-sig")
        except (OSError, UnicodeDecodeError) as error:
            raise LabelError(
                "unreadable label file(s)", f"{type(error).__name__}: {error}"
            ) from error
        names = [line.strip() for line in text.splitlines() if line.strip()]
        if not names and not self.semantic:
            raise LabelError(
                "empty label file(s) (expected the class name(s) of the image, one per line)", ""
            )
        unknown = [name for name in names if name.casefold() not in self._index]
        if unknown:
            raise LabelError(
                f"label(s) naming an unknown class (expected one of {self.expected()})",
                ", ".join(map(repr, unknown)),
            )
        counts = Counter(self._index[name.casefold()] for name in names)
        twice = [self.names[i] for i, count in counts.items() if count > 1]
        if twice:
            raise LabelError(
                "label(s) listing a class more than once (each class the image holds, once)",
                ", ".join(map(repr, twice)),
            )
        if len(counts) > 1 and not self.semantic:
            raise LabelError(
                "label(s) listing several classes (several classes per image need "
                "ROOT/classes.txt and index masks: a binary mask cannot say which object is "
                "which class)",
                ", ".join(map(repr, names)),
            )
        return tuple(sorted(counts))

    def label_sizes(self, root: Path, skip: str) -> set[int]:
        """How many classes the label files of the splits of `root` other than `skip` list
        (each count once); files that do not parse are their split's to report, and are left
        out."""
        sizes = set()
        for path in _label_files(root, skip):
            try:
                sizes.add(len(self.read_label(path)))
            except LabelError:
                continue
        return sizes

    def mask_classes(self, mask: np.ndarray) -> tuple[int, ...]:
        """The class indices (ascending) an index mask holds, background and ignored pixels
        aside; LabelError naming the values that stand for no class of the folder."""
        present = np.flatnonzero(np.bincount(mask.ravel(), minlength=IGNORED + 1))
        stray = [int(v) for v in present if len(self.names) < v < IGNORED]
        if stray:
            raise LabelError(
                f"mask value(s) with no class (1..{len(self.names)} name the classes of "
                f"{self.file}, 0 is background, {IGNORED} ignored)",
                ", ".join(map(str, stray)),
            )
        return tuple(int(v) - 1 for v in present if 0 < v < IGNORED)


def _label_files(root: Path, skip: str) -> Iterator[Path]:
    """The label files of every split of `root` but `skip`, hidden files and folders left out."""
    for split in sorted((root / "labels").iterdir()):
        if split.name != skip and not split.name.startswith(".") and split.is_dir():
            yield from folder_files(split, KINDS["labels"])[0].values()  # its split reports clashes
