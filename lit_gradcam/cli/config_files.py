"""The files around a run's configuration: the base config every run reads first, the check
that each `--config` file is YAML, where the run's own `config.yaml` is saved, and the check
that a folder setting can be a folder."""

from __future__ import annotations

from pathlib import Path

import lightning as L
import yaml
from lightning.pytorch.cli import SaveConfigCallback
from lightning.pytorch.utilities import rank_zero_warn

from lit_gradcam.errors import ConfigError, file_in_the_way

#: What every run shares, read before any --config file (see the file's header).
BASE_CONFIG = Path(__file__).resolve().parents[2] / "configs" / "base.yaml"
#: The run's name (log and checkpoint folders) when no --config file is given.
DEFAULT_RUN = "default"


class RunConfigSaver(SaveConfigCallback):
    """Saves the run's `config.yaml` beside its logs, as Lightning does, or, without a logger,
    beside its checkpoints: never into the current folder, where Lightning's fallback would
    overwrite a file of the user's."""

    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        if not trainer.loggers:
            self.save_to_log_dir = False  # save_config below writes it instead
        super().setup(trainer, pl_module, stage)

    def save_config(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        if self.save_to_log_dir:
            return
        checkpoints = trainer.checkpoint_callback
        if checkpoints is None or not checkpoints.dirpath:
            rank_zero_warn(
                f"no logger and no checkpoint folder: the run's {self.config_filename} is not "
                "saved (it would land in the current folder)"
            )
            return
        folder = Path(checkpoints.dirpath)
        folder.mkdir(parents=True, exist_ok=True)
        self.parser.save(
            self.config,
            str(folder / self.config_filename),
            skip_none=False,
            overwrite=True,  # the checkpoint folder's own config, as its last.ckpt is
            multifile=self.multifile,
        )


def config_files(words: list[str]) -> list[Path]:
    """The existing files that `-c` / `--config` name in a command line."""
    found = []
    for index, word in enumerate(words):
        value = None
        if word in ("-c", "--config") and index + 1 < len(words):
            value = words[index + 1]
        elif word.startswith("--config="):
            value = word.split("=", 1)[1]
        if value is not None and Path(value).is_file():
            found.append(Path(value))
    return found


def yaml_problem(path: Path) -> str | None:
    """Why `path` is not a YAML file (with its line and column where known), else None:
    jsonargparse's own message names no file."""
    try:
        yaml.safe_load(path.read_text())
    except (yaml.YAMLError, UnicodeDecodeError) as error:
        mark = getattr(error, "problem_mark", None)
        where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark else ""
        problem = getattr(error, "problem", None) or error
        return f"--config {path}: not valid YAML{where}: {problem}"
    return None


def require_folder(setting: str, folder: object) -> None:
    """ConfigError unless `folder` (a str setting; others are left to Lightning) can be a
    folder: neither it nor a folder above it is an existing file."""
    if not isinstance(folder, str):
        return
    if (part := file_in_the_way(Path(folder))) is not None:
        raise ConfigError(
            f"--{setting} {folder}: {part} is a file; expected a folder (created if absent)"
        )
