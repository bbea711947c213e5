"""Exceptions raised by idcrisis.

Every exception of the package derives from :class:`IdcrisisError`; those that mean "bad input"
also derive from the matching built-in, so ``except ValueError`` works as expected. Messages are
the library's own, naming the key or file that was wrong.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Optional

if TYPE_CHECKING:
    from ._run import Run

__all__ = [
    "IdcrisisError",
    "ConfigError",
    "MissingDataError",
    "DataError",
    "DivergedError",
    "InternalError",
]


class IdcrisisError(Exception):
    """Base class of idcrisis's exceptions."""


class ConfigError(IdcrisisError, ValueError):
    """A configuration key is unknown, has the wrong type, or its value is out of range."""


class MissingDataError(IdcrisisError, FileNotFoundError):
    """A data set is not on disk; the message says how to get it (``idcrisis data fetch ...``)."""


class DataError(IdcrisisError, ValueError):
    """A data or weights file is malformed."""


class DivergedError(IdcrisisError):
    """Training diverged (the loss became NaN or infinite).

    The run is still complete on its own terms: :attr:`run` holds it (config, losses, weights),
    as the CLI still writes the run directory of a diverged run.
    """

    def __init__(self, message: str, run: Optional["Run"] = None) -> None:
        super().__init__(message)
        #: The diverged run.
        self.run = run


class InternalError(IdcrisisError, RuntimeError):
    """A bug in the engine (a Rust panic), caught at the boundary instead of crashing Python."""
