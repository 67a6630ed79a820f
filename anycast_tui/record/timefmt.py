"""UTC millisecond times as text and back (ISO 8601, ``Z``)."""

from __future__ import annotations

import datetime as _dt


def iso(t_ms: int, *, ms: bool = True) -> str:
    """``2026-11-26T14:49:44.123Z`` (``ms=False``: to the second)."""
    d = _dt.datetime.fromtimestamp(t_ms / 1000, tz=_dt.timezone.utc)
    text = d.strftime("%Y-%m-%dT%H:%M:%S")
    return f"{text}.{t_ms % 1000:03d}Z" if ms else f"{text}Z"


def parse_time(text: str, *, start_ms: int | None = None) -> int:
    """ISO 8601 (naive = UTC), epoch milliseconds, or ``+SECONDS`` from ``start_ms``; raises ValueError."""
    s = text.strip()
    if s.startswith("+") and start_ms is not None:
        return start_ms + int(float(s[1:]) * 1000)
    if s.isdigit():
        return int(s)
    d = _dt.datetime.fromisoformat(s.replace("Z", "+00:00"))
    if d.tzinfo is None:
        d = d.replace(tzinfo=_dt.timezone.utc)
    return int(d.timestamp() * 1000)
