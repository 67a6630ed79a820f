"""The one error type every parser raises."""

from __future__ import annotations


class ParseError(ValueError):
    """Input that a parser cannot turn into records.

    ``line`` is 1-based (0 when the failure is not tied to a line, e.g. empty
    JSON); ``reason`` is one human line; ``kind`` names the command family.
    """

    def __init__(self, line: int, reason: str, kind: str | None = None, text: str | None = None):
        self.line = line
        self.reason = reason
        self.kind = kind
        self.text = text
        where = f"line {line}" if line else "input"
        prefix = f"{kind}: " if kind else ""
        snippet = ""
        if text is not None:
            t = text.strip()
            snippet = f": {t[:60]!r}" + ("…" if len(t) > 60 else "")
        super().__init__(f"{prefix}{where}: {reason}{snippet}")
