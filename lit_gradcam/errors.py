"""`ConfigError`: a setting a user can fix, raised where the setting is checked.

It sits at the bottom of the house so every module can raise it; the command line prints its
message alone (no traceback), even when jsonargparse wraps it while building a config's classes.
"""

from __future__ import annotations

from pathlib import Path


class ConfigError(ValueError):
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
