"""The one error type every parser raises, and how device text is quoted in its messages."""

from __future__ import annotations

import reprlib
from typing import Any

SHOWN = 24  # characters of a value quoted in a reason (repr: quotes and escapes included)
SNIPPET = 60  # characters of the offending line quoted after a reason

_REPR = reprlib.Repr()
_REPR.maxlevel, _REPR.maxlist, _REPR.maxtuple, _REPR.maxdict = 2, 3, 3, 2
_REPR.maxstring = _REPR.maxother = _REPR.maxlong = SHOWN


def shown(value: Any, limit: int = SHOWN) -> str:
    """A value for an error message: its repr (control characters escaped), cut to ``limit`` characters.

    Never builds more than that: a 10 MB string is sliced before repr, a container is summarised a few
    items deep, a 5,000-digit number is named by its length.
    """
    if isinstance(value, int) and not isinstance(value, bool) and value.bit_length() > 80:
        return f"a {int((value.bit_length() - 1) * 0.30103) + 1}-digit number"  # no repr(): 4300+ digits refuse
    if isinstance(value, str):
        text = repr(value) if len(value) <= limit else repr(value[:limit]) + "…" + repr(value[-3:])
    else:
        try:
            text = _REPR.repr(value)
        except (ValueError, RecursionError):
            text = f"a {type(value).__name__}"
    if len(text) <= limit:
        return text
    head = text[: max(limit - 4, 1)]
    if isinstance(value, str):
        return head + "…" + text[-3:]  # the end of the repr of the tail: its last characters and quote
    return head + "…"


class ParseError(ValueError):
    """Input that a parser cannot turn into records.

    ``line`` is 1-based (0 when the failure is not tied to a line, e.g. empty
    JSON); ``reason`` is one human line; ``kind`` names the command family;
    ``command`` the poll's command id whose output it was (``routes4``), when
    the caller knows it (``with_command``) — a field, never parsed back out of
    the text.  Device text in a reason is quoted with :func:`shown` (at most a
    few dozen characters, escaped); the offending line is quoted the same way,
    cut to ``SNIPPET`` characters.
    """

    def __init__(self, line: int, reason: str, kind: str | None = None, text: str | None = None,
                 command: str | None = None):
        self.line = line
        self.reason = reason
        self.kind = kind
        self.text = text
        self.command = command
        where = f"line {line}" if line else "input"
        prefix = f"{kind}: " if kind else ""
        if command:
            where = f"{where}: {command}"
        snippet = ""
        if text is not None:
            t = text[: SNIPPET * 4].strip()  # sliced first: a 10 MB line is not copied
            snippet = f": {shown(t[:SNIPPET], SNIPPET + 2)}" + ("…" if len(t) > SNIPPET else "")
        super().__init__(f"{prefix}{where}: {reason}{snippet}")


class ExportDecodeError(ParseError):
    """An export datagram (sFlow, IPFIX, NetFlow v9) or a capture file that cannot be decoded.

    ``reason`` is one line naming where (``sample 3: record length 4000000 exceeds the datagram (812 bytes
    left)``); ``kind`` is ``sflow``, ``ipfix``, ``netflow9`` or ``pcap``.  Not tied to a text line (``line``
    is 0), so the message is the reason alone, after the kind.
    """

    def __init__(self, reason: str, kind: str | None = None):
        self.line = 0
        self.reason = reason
        self.kind = kind
        self.text = None
        self.command = None
        ValueError.__init__(self, f"{kind}: {reason}" if kind else reason)


def with_command(exc: ParseError, command: str) -> ParseError:
    """The same error, naming the command whose output it was."""
    if isinstance(exc, ExportDecodeError):
        return exc
    return ParseError(exc.line, exc.reason, exc.kind, exc.text, command)
