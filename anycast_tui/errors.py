"""Errors shared above the core: imports nothing of the package, so any layer may import it."""

from __future__ import annotations


class CliError(Exception):
    """A user-facing error: printed as one line, exit status ``code``."""

    def __init__(self, message: str, code: int = 2):
        super().__init__(message)
        self.code = code
