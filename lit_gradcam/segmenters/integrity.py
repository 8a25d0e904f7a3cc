"""A checkpoint's sha256, computed once: a stamp beside the file remembers it while it is unchanged.

Hashing a multi-gigabyte checkpoint on every load costs seconds, so the digest is written to
`<file>.sha256.json` together with the file's size and modification time; a later load trusts
the stamp while both still match and hashes the file again as soon as either differs.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import warnings
from pathlib import Path

from lit_gradcam.errors import UserError

STAMP_SUFFIX = ".sha256.json"
_CHUNK = 1 << 20


class CheckpointIntegrityError(UserError, RuntimeError):
    """A checkpoint's bytes differ from their known sha256; says which file and what to do."""


def sha256_file(path: Path) -> str:
    """The sha256 hex digest of the file at `path`, read in chunks."""
    digest = hashlib.sha256()
    with path.open("rb") as file:
        while chunk := file.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def stamp_path(path: Path) -> Path:
    return path.with_name(path.name + STAMP_SUFFIX)


def write_stamp(path: Path, digest: str, stat: os.stat_result | None = None) -> None:
    """Record `digest` for `path` as it is now (or as `stat` saw it), atomically.

    A folder that cannot be written to only costs a warning: the file is hashed on every load.
    """
    stat = path.stat() if stat is None else stat
    record = {"sha256": digest, "size": stat.st_size, "mtime_ns": stat.st_mtime_ns}
    stamp = stamp_path(path)
    try:
        fd, tmp_name = tempfile.mkstemp(dir=stamp.parent, prefix=f".{stamp.name}.", suffix=".part")
        with os.fdopen(fd, "w") as out:
            json.dump(record, out)
        os.replace(tmp_name, stamp)
    except OSError as err:
        warnings.warn(
            f"could not write {stamp} ({err}); {path} will be hashed again on every load",
            stacklevel=2,
        )


def recorded_sha256(path: Path, stat: os.stat_result) -> str | None:
    """The stamped digest of `path` if the stamp exists and matches the file's size and mtime."""
    try:
        record = json.loads(stamp_path(path).read_text())
        unchanged = record["size"] == stat.st_size and record["mtime_ns"] == stat.st_mtime_ns
        return str(record["sha256"]) if unchanged else None
    except (OSError, ValueError, KeyError, TypeError):
        return None


def verify_sha256(path: Path, expected: str | None = None, advice: str = "") -> str:
    """The sha256 of `path`, hashed only when no stamp vouches for the file as it is now.

    expected: the digest the file must have, None to only record it.
    advice: what the user should do, appended to the error when the file is not `expected`.
    """
    stat = path.stat()
    digest = recorded_sha256(path, stat)
    if digest is None or (expected is not None and digest != expected):
        digest = sha256_file(path)
        if expected is not None and digest != expected:
            raise CheckpointIntegrityError(
                f"{path} is corrupted or not the expected file: its sha256 is {digest}, "
                f"expected {expected}. {advice}".rstrip()
            )
        write_stamp(path, digest, stat)
    return digest
