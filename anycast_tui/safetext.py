"""Device text as data, on one line: control characters shown escaped, never acted on by a terminal.

Used wherever device-supplied text reaches a human: the TUI's and headless lines (``ui.view``) and the
``record`` daemon's log lines (``SafeFormatter``).  Imports nothing of the package, so any layer may use it.
"""

from __future__ import annotations

import logging

_CONTROL = {c: f"\\x{c:02x}" for c in (*range(0x20), 0x7f, *range(0x80, 0xa0))}
_CONTROL.update({ord("\n"): "\\n", ord("\r"): "\\r", ord("\t"): "\\t"})


def safe(text: str) -> str:
    """``text`` with control characters (newlines, escape sequences, C1 controls) shown as ``\\n``, ``\\x1b``…"""
    return text.translate(_CONTROL)


class SafeFormatter(logging.Formatter):
    """A log line's message escaped as ``safe`` does (a traceback below it keeps its own lines)."""

    def formatMessage(self, record: logging.LogRecord) -> str:  # noqa: N802 - logging's name
        escaped = logging.makeLogRecord(record.__dict__)
        escaped.message = safe(record.message)
        return super().formatMessage(escaped)
