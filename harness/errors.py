"""Errors a user can act on: each carries the exit code and a message that says what to fix.

The CLI and the pytest plugin print these as one message, never a traceback.
Exit codes (docs/cli.md): 0 valid, 1 invariant violated, 2 unknown, 3 bad input
or broken infrastructure.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

__all__ = ["TxchaosError", "BadInput", "InfraError", "EXIT_VALID", "EXIT_VIOLATED",
           "EXIT_UNKNOWN", "EXIT_BAD_INPUT", "reading"]

EXIT_VALID = 0
EXIT_VIOLATED = 1
EXIT_UNKNOWN = 2
EXIT_BAD_INPUT = 3


class TxchaosError(Exception):
    """Base of every error txchaos reports to a user; `str()` is the whole message."""

    exit_code = EXIT_BAD_INPUT


class BadInput(TxchaosError):
    """The user gave something txchaos cannot use: a file, a name, an option."""


class InfraError(TxchaosError):
    """The lab or the target is broken or unreachable: not a verdict about the target."""


@contextmanager
def reading(path: Path, expected: str) -> Iterator[None]:
    """Turn the OS errors of reading a user's file into a BadInput naming the file."""
    try:
        yield
    except FileNotFoundError:
        raise BadInput(f"{path}: no such file") from None
    except IsADirectoryError:
        raise BadInput(f"{path}: is a directory, expected {expected}") from None
    except UnicodeDecodeError as e:
        raise BadInput(f"{path}: not UTF-8 text ({e.reason})") from None
