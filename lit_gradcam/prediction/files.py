"""`OutputFolder`: the files of one `python main.py predict` run replace the last run's whole.

A run writes into a hidden staging folder inside `output_dir` (same file system, so moving a
file is a rename). Only when it has succeeded does rank 0 move the files into place: it first
writes `predictions.manifest.json` listing the files of both runs (so a crash part-way leaves
every file this tool wrote listed), then, with overwrite, removes the files the previous
manifest lists (only those), moves the new files in with `os.replace`, the CSV last, and writes
the manifest of the new run. A failed or stopped run only removes its staging folder. A file the
run would write that no manifest lists is the user's: the run is refused before it writes
anything.

A run holds a lock on a file in its staging folder (`.predictions-XXXXXXXX.partial/run.lock`)
until it commits or discards; the system drops it when the process dies. So the next run into
the folder removes a staging folder that a killed run (SIGKILL) left, and only one whose lock is
free; one of that name without the lock file (killed as it was being made) is named in a
warning, and kept.

The manifest is JSON: `{"written_by": "lit-gradcam predict", "format": 1, "files": [...]}`,
`files` being the sorted names, inside `output_dir`, of every file the run wrote (the CSV too).
"""

from __future__ import annotations

import contextlib
import csv
import json
import os
import re
import shutil
import tempfile
from collections.abc import Iterable, Sequence
from pathlib import Path

import lightning as L
from filelock import FileLock, Timeout
from lightning.pytorch.utilities import rank_zero_warn

from lit_gradcam.errors import UserError

CSV_NAME = "predictions.csv"
MANIFEST_NAME = "predictions.manifest.json"
WRITTEN_BY = "lit-gradcam predict"
STAGING_PREFIX, STAGING_SUFFIX = ".predictions-", ".partial"
#: A staging folder's name, as `tempfile.mkdtemp` makes it from the prefix and suffix.
STAGING_NAME = re.compile(rf"{re.escape(STAGING_PREFIX)}[a-z0-9_]{{8}}{re.escape(STAGING_SUFFIX)}")
#: The file in a staging folder whose lock the run writing into it holds.
STAGING_LOCK = "run.lock"
#: CSV columns that hold file names or free text, escaped against spreadsheet formulas.
TEXT_COLUMNS = ("file", "mask", "overlay", "note", "error")
#: First characters that make a spreadsheet read a cell as a formula (OWASP CSV injection).
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


class OutputExistsError(UserError, FileExistsError):
    """The output folder holds predictions (overwrite not asked for) or a file of the user's,
    or is the folder being predicted."""


class OutputDirError(UserError, OSError):
    """`output_dir` is a file, or a folder that cannot be created or written."""


class OutputFolder:
    """`output_dir` of one run: checked at setup, written through a staging folder, then
    committed (rank 0, once every rank has written) or discarded."""

    def __init__(self, path: Path, overwrite: bool) -> None:
        self.path = path
        self.overwrite = overwrite
        self.staging: Path | None = None  # the run's hidden folder, from `open_staging`
        self._created = False  # whether this run created `path` (removed again if it fails)
        self._lock: FileLock | None = None  # held on the staging folder's lock file (rank 0)

    def check(self, names: Iterable[str]) -> None:
        """Refuse the run if it would replace predictions without overwrite, or `names` (the
        files it writes) hold a file of the user's; reads only."""
        if self.path.exists() and not self.path.is_dir():
            raise OutputDirError(
                f"--output.output_dir {self.path} is a file; expected a folder for the "
                "predictions, or a path where one can be created"
            )
        if not self.path.is_dir():
            return
        previous = self._previous_files()
        if previous is not None and not self.overwrite:
            raise OutputExistsError(
                f"{self.path} already holds predictions ({MANIFEST_NAME}): pass --output.overwrite "
                "true to replace them, or choose another --output.output_dir"
            )
        listed = previous or set()  # those are the last run's, to be replaced
        names = set(names) - listed
        foreign = sorted(n for n in names if os.path.lexists(self.path / n))
        if foreign:
            more = f" (and {len(foreign) - 1} more)" if len(foreign) > 1 else ""
            raise OutputExistsError(
                f"{self.path / foreign[0]}{more} was not written by lit-gradcam predict (no "
                f"{MANIFEST_NAME} lists it); move it or choose another --output.output_dir"
            )

    def open_staging(self, trainer: L.Trainer) -> Path:
        """Rank 0 creates `path` and the staging folder; every rank gets its path (or the
        same OutputDirError)."""
        name = problem = ""
        if trainer.is_global_zero:
            try:
                name, problem = self._make_staging(), ""
            except OutputDirError as error:
                problem = str(error)
        name, problem = trainer.strategy.broadcast((name, problem))
        if problem:
            raise OutputDirError(problem)
        self.staging = self.path / name
        return self.staging

    def _make_staging(self) -> str:
        self._created = not self.path.exists()
        try:
            self.path.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            self._created = False
            raise OutputDirError(
                f"--output.output_dir {self.path} cannot be created ({error.strerror or error}); "
                "expected a folder you can write to"
            ) from error
        try:
            self._remove_abandoned()
            self.staging = Path(tempfile.mkdtemp(STAGING_SUFFIX, STAGING_PREFIX, self.path))
            self._lock = FileLock(self.staging / STAGING_LOCK)
            self._lock.acquire()
        except OSError as error:
            self.discard()
            raise OutputDirError(
                f"--output.output_dir {self.path} cannot be written ({error.strerror or error}); "
                "expected a folder you can write to"
            ) from error
        return self.staging.name

    def _remove_abandoned(self) -> None:
        """Remove the staging folders of runs that were killed (their lock is free); name those
        without a lock file."""
        for folder in sorted(self.path.iterdir()):
            if not STAGING_NAME.fullmatch(folder.name) or not folder.is_dir():
                continue
            if not (folder / STAGING_LOCK).is_file():
                rank_zero_warn(
                    f"{folder} looks like the staging folder of a predict run killed as it "
                    "began; remove it unless a run is writing into it"
                )
                continue
            with contextlib.suppress(Timeout), FileLock(folder / STAGING_LOCK, timeout=0):
                shutil.rmtree(folder)  # its run is gone: a live one holds the lock

    def commit(self) -> None:
        """Move every staged file into `path` (see the module docstring); rank 0 only."""
        staged = sorted(p.name for p in self.staging.iterdir() if p.name != STAGING_LOCK)
        self.check(staged)  # again: another run may have finished into the folder meanwhile
        previous = self._previous_files() or set()
        _write_manifest(self.path, self.staging, previous | set(staged))
        for name in sorted(previous - set(staged)):
            (self.path / name).unlink(missing_ok=True)
        for name in sorted(staged, key=lambda n: n == CSV_NAME):  # the CSV last
            os.replace(self.staging / name, self.path / name)
        _write_manifest(self.path, self.staging, set(staged))
        self._unlock()
        (self.staging / STAGING_LOCK).unlink(missing_ok=True)
        self.staging.rmdir()
        self.staging = None

    def discard(self) -> None:
        """Remove the staging folder, and `path` if this run created it and it is empty."""
        if self.staging is not None:
            shutil.rmtree(self.staging, ignore_errors=True)
            self.staging = None
        self._unlock()
        if self._created:
            with contextlib.suppress(OSError):
                self.path.rmdir()

    def _unlock(self) -> None:
        if self._lock is not None:
            self._lock.release()
            self._lock = None

    def _previous_files(self) -> set[str] | None:
        """The files the last run's manifest lists; None without one."""
        manifest = self.path / MANIFEST_NAME
        if not os.path.lexists(manifest):
            return None
        try:
            data = json.loads(manifest.read_text())
            files = data["files"] if data.get("written_by") == WRITTEN_BY else None
        except (OSError, ValueError, AttributeError, KeyError) as error:
            raise _bad_manifest(manifest) from error
        if not isinstance(files, list) or not all(_is_plain_name(f) for f in files):
            raise _bad_manifest(manifest)
        return set(files)


def _bad_manifest(manifest: Path) -> OutputExistsError:
    return OutputExistsError(
        f"{manifest} is not a manifest lit-gradcam predict wrote; move it or choose another "
        "--output.output_dir"
    )


def _is_plain_name(name: object) -> bool:
    """A file name directly inside the folder: no path, so a manifest never removes elsewhere."""
    return isinstance(name, str) and name not in ("", ".", "..") and Path(name).name == name


def _write_manifest(folder: Path, staging: Path, files: set[str]) -> None:
    """Write the manifest listing `files` atomically (staged, then renamed into `folder`)."""
    temporary = staging / MANIFEST_NAME
    manifest = {"written_by": WRITTEN_BY, "format": 1, "files": sorted(files)}
    temporary.write_text(json.dumps(manifest, indent=1) + "\n")
    os.replace(temporary, folder / MANIFEST_NAME)


def spreadsheet_safe(text: str) -> str:
    """`text` with a leading `'` where a spreadsheet would read it as a formula (a file named
    `=cmd.png`), as OWASP advises for CSV cells; the file itself keeps its name."""
    return f"'{text}" if text.startswith(FORMULA_STARTS) else text


def write_csv(path: Path, rows: list[dict[str, str]], columns: Sequence[str]) -> None:
    """Write rows sorted by file name, text columns escaped by `spreadsheet_safe`."""
    with path.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=columns, restval="")
        writer.writeheader()
        for row in sorted(rows, key=lambda row: row["file"]):
            writer.writerow(
                {k: spreadsheet_safe(v) if k in TEXT_COLUMNS else v for k, v in row.items()}
            )
