"""Checks of a `--ckpt_path` file before Lightning reads it, so a user reads what is wrong
instead of an unpickling traceback, and a checkpoint of another model is not scored in silence.

Nothing here unpickles a file: the checks read the zip archive's names and bytes, or map the
file with `weights_only=True`.
"""

from __future__ import annotations

import re
import zipfile
from pathlib import Path

import torch
from lightning.pytorch.callbacks import ModelCheckpoint

from lit_gradcam.errors import UserError


class CheckpointFileError(UserError):
    """A `--ckpt_path` file that cannot be what the run needs; the message says why."""


def require_checkpoint_file(path: str) -> None:
    """A local checkpoint must exist and be a whole PyTorch file (a zip archive) that Lightning
    saved."""
    if not Path(path).is_file():
        raise CheckpointFileError(f"--ckpt_path {path}: no such checkpoint file")
    if not zipfile.is_zipfile(path):
        raise CheckpointFileError(
            f"--ckpt_path {path}: not a readable PyTorch checkpoint (truncated, or not a file "
            "`python main.py fit` saved)"
        )
    if not is_lightning_checkpoint(path):
        raise CheckpointFileError(
            f"--ckpt_path {path}: a PyTorch file but not a Lightning checkpoint (a SAM .pth or "
            "exported weights?); pass a .ckpt that `python main.py fit` saved"
        )


def is_lightning_checkpoint(path: str) -> bool:
    """Whether a PyTorch zip archive holds a Lightning checkpoint, read from its pickle's bytes
    (its key names) without unpickling anything."""
    with zipfile.ZipFile(path) as archive:
        pickles = [name for name in archive.namelist() if name.rsplit("/", 1)[-1] == "data.pkl"]
        return bool(pickles) and b"pytorch-lightning_version" in archive.read(pickles[0])


def require_model_class(path: str, wanted: str | None) -> None:
    """A checkpoint saved by another model class than the config's (`wanted`) is refused:
    LightningCLI would otherwise build the checkpoint's class instead, and score something else
    than the config says without a word."""
    try:
        # mapped, not read: only the hyper-parameters are wanted; Lightning loads it next
        loaded = torch.load(path, weights_only=True, map_location="cpu", mmap=True)
    except Exception:  # torch raises many types; Lightning loads it next and says why
        return
    saved = loaded.get("hyper_parameters", {}).get("_class_path")
    if saved and wanted and saved != wanted:
        raise CheckpointFileError(
            f"--ckpt_path {path}: a checkpoint of {saved}, but the config's model is {wanted}; "
            "pass the config it was trained with (its run folder's config.yaml has it)"
        )


def last_checkpoints(folder: str | Path | None) -> list[Path]:
    """The files `--ckpt_path last` chooses from in `folder`: `last.ckpt` and its numbered
    versions (`last-v1.ckpt`), as `ModelCheckpoint` names them."""
    if folder is None or not Path(folder).is_dir():
        return []
    name = re.compile(rf"^{re.escape(ModelCheckpoint.CHECKPOINT_NAME_LAST)}(-v?\d+)?$")
    return sorted(
        path
        for path in Path(folder).iterdir()
        if path.suffix == ModelCheckpoint.FILE_EXTENSION and name.match(path.stem)
    )


def names_a_local_file(ckpt_path: str) -> bool:
    """False for what Lightning resolves itself ("best", "last", "hpc", "registry:..."); URLs
    are refused before this is asked."""
    special = ckpt_path in ("best", "last", "hpc") or ckpt_path.split(":")[0].lower() == "registry"
    return not special
