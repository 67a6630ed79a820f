"""The one writer of every ``--json`` output: strict JSON (RFC 8259), never ``NaN`` or ``Infinity``.

Python's ``json.dumps`` writes a float that is not finite as ``Infinity`` /
``NaN``, which no strict JSON reader accepts.  The parsers refuse such values
(a ``1e999`` weight or idle time is a ParseError), so one reaching the output
is a bug: the command fails with one line naming where the value sits
(``$[3].idle_time``), exit status 1, and writes nothing — a null in its place
would pass for data.
"""

from __future__ import annotations

import json
import math
from typing import Any, Iterable

from anycast_tui.errors import CliError


def dumps(obj: Any, **kw: Any) -> str:
    """``json.dumps(obj, allow_nan=False, **kw)``; a non-finite number is a CliError naming its place."""
    try:
        return json.dumps(obj, allow_nan=False, **kw)
    except ValueError:
        where = _nonfinite(obj, "$")
        if where is None:
            raise
        raise CliError(f"--json: {where} is not a finite number, which JSON cannot hold (please report)",
                       code=1) from None


def lines(rows: Iterable[Any]) -> str:
    """A JSON array with one element a line (greppable, still one JSON document)."""
    rows = list(rows)
    try:
        return "[\n" + ",\n".join(json.dumps(r, allow_nan=False) for r in rows) + "\n]" if rows else "[]"
    except ValueError:
        return dumps(rows)  # names the place (or re-raises what was not a number)


def emit(obj: Any, **kw: Any) -> None:
    """Print ``obj`` as strict JSON, a newline after it."""
    print(dumps(obj, **kw))


def _nonfinite(obj: Any, path: str) -> str | None:
    """The path of the first float that is not finite in ``obj`` (dicts, lists, tuples), else None."""
    if isinstance(obj, float):
        return None if math.isfinite(obj) else f"{path} ({obj!r})"
    if isinstance(obj, dict):
        for k, v in obj.items():
            found = _nonfinite(v, f"{path}.{k}")
            if found:
                return found
    elif isinstance(obj, (list, tuple)):
        for i, v in enumerate(obj):
            found = _nonfinite(v, f"{path}[{i}]")
            if found:
                return found
    return None
