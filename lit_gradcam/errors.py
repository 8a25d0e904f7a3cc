"""`ConfigError`: a setting a user can fix, raised where the setting is checked.

It sits at the bottom of the house so every module can raise it; the command line prints its
message alone (no traceback), even when jsonargparse wraps it while building a config's classes.
"""

from __future__ import annotations


class ConfigError(ValueError):
    """A setting has a value the project cannot use; the message names the setting and what it
    accepts."""
