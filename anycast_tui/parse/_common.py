"""Helpers shared by the parsers: canonical addresses, JSON loading, extra values."""

from __future__ import annotations

import ipaddress
import json
import re
from functools import lru_cache
from typing import Any

from anycast_tui.parse.errors import ParseError

# Dotted quads as the kernel prints them (no leading zeros), optionally with a length.
_O = r"(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])"
_V4 = _O + r"(?:\." + _O + r"){3}"
_V4_PREFIX = re.compile(_V4 + r"/(?:3[0-2]|[12]?[0-9])").fullmatch
_V4_ADDR = re.compile(_V4).fullmatch


class BadValue(ValueError):
    """Raised by the helpers below; parsers turn it into a ParseError with a line number."""


@lru_cache(maxsize=65536)
def _prefix_slow(text: str) -> tuple[str, int]:
    try:
        if "/" in text:
            # ip_interface, not ip_network: host bits (if a capture has them) are kept, not masked away.
            iface = ipaddress.ip_interface(text)
            return f"{iface.ip}/{iface.network.prefixlen}", iface.version
        addr = ipaddress.ip_address(text)
    except ValueError:
        raise BadValue(f"not an address or prefix: {text!r}") from None
    return f"{addr}/{addr.max_prefixlen}", addr.version


def prefix(text: str, family: int | None = None) -> tuple[str, int]:
    """Canonical ``(prefix-with-length, family)`` of a route destination.

    ``default`` needs ``family`` (4 or 6); a bare address becomes a host prefix.
    """
    if text == "default":
        if family == 6:
            return "::/0", 6
        return "0.0.0.0/0", 4
    if "/" in text:
        if _V4_PREFIX(text):
            return text, 4
    elif _V4_ADDR(text):
        return text + "/32", 4
    return _prefix_slow(text)


@lru_cache(maxsize=65536)
def address(text: str) -> tuple[str, int]:
    """Canonical ``(address, family)``; raises BadValue for anything else."""
    if _V4_ADDR(text):
        return text, 4
    try:
        addr = ipaddress.ip_address(text)
    except ValueError:
        raise BadValue(f"not an address: {text!r}") from None
    return str(addr), addr.version


def integer(text: Any, what: str) -> int:
    if isinstance(text, bool):
        raise BadValue(f"bad {what}: {text!r}")
    if isinstance(text, int):
        return text
    if isinstance(text, str):
        try:
            return int(text, 0) if text[:2].lower() == "0x" else int(text)
        except ValueError:
            pass
    raise BadValue(f"bad {what}: {text!r}")


def extra_value(value: Any) -> str:
    """How an unmodelled JSON value is kept in ``extra``: scalars as text, the rest JSON-encoded."""
    if isinstance(value, str):
        return value
    if isinstance(value, bool) or value is None or isinstance(value, (dict, list)):
        return json.dumps(value, sort_keys=False, separators=(",", ":"))
    return str(value)


def load_json(text: str, kind: str) -> list[Any]:
    """Parse JSON output into a list of objects (a single object becomes a one-item list)."""
    if not isinstance(text, str):
        raise ParseError(0, "input is not text", kind)
    if not text.strip():
        return []
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ParseError(exc.lineno, f"invalid JSON: {exc.msg} (column {exc.colno})", kind) from None
    except RecursionError:
        raise ParseError(0, "JSON nested too deeply", kind) from None
    except ValueError as exc:  # e.g. an integer longer than Python's 4300-digit limit
        raise ParseError(0, f"invalid JSON: {exc}", kind) from None
    if isinstance(data, dict):
        data = [data]
    if not isinstance(data, list):
        raise ParseError(1, f"expected a JSON array of objects, got {type(data).__name__}", kind)
    for i, item in enumerate(data):
        if not isinstance(item, dict):
            raise ParseError(0, f"item {i}: expected an object, got {type(item).__name__}", kind)
    return data


def lines_of(text: str, kind: str) -> list[str]:
    if not isinstance(text, str):
        raise ParseError(0, "input is not text", kind)
    return text.splitlines()
