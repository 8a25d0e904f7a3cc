"""`UserError`, the base of every error a user can fix, and `ConfigError`, a bad setting.

They sit at the bottom of the house so every module can raise them. The command line catches
`UserError` alone and prints its message (no traceback), also when jsonargparse wraps one while
building a config's classes; every other exception is a bug and keeps its traceback.
"""

from __future__ import annotations

from pathlib import Path


class UserError(Exception):
    """Something the user can fix: the message names the file, argument or setting, and says
    what was expected."""


class MissingFileError(UserError, FileNotFoundError):
    """A file the user named (a checkpoint, say) is not there."""


class ConfigError(UserError, ValueError):
    """A setting has a value the project cannot use; the message names the setting and what it
    accepts."""


def file_in_the_way(path: Path) -> Path | None:
    """The first of `path` and the folders above it that exists as a file: where a folder is
    needed, nothing can be created there (None when there is none)."""
    return next((p for p in (path, *path.parents) if p.exists() and not p.is_dir()), None)


def require_at_least(prefix: str, minimum: float, **settings: float) -> None:
    """ConfigError naming the first of `settings` (as ``prefix.name``) below `minimum`."""
    for name, value in settings.items():
        if value < minimum:
            raise ConfigError(f"{prefix}.{name} must be >= {minimum}, got {value}")


def require_steps(total: float) -> int:
    """The run's optimizer steps as Lightning estimates them, for a schedule that spans the run;
    ConfigError unless they are a positive, finite number."""
    if not 0 < total < float("inf"):
        raise ConfigError(
            "trainer.max_steps must be a positive number of steps (or trainer.max_epochs set), "
            f"since the learning-rate schedule spans the run; the trainer would run {total}"
        )
    return int(total)
