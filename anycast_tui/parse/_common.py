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


# The ranges the Linux kernel itself accepts, checked at parse time so that the model never sees a value
# no device can have (a weight 0 divides by zero, 10**20 overflows numpy, a negative one gives an answer).
U32_MAX = 2**32 - 1
ROUTE_WEIGHT = (1, 256)  # RTA_MULTIPATH rtnh_hops is a u8 holding weight-1 (iproute2 ip/iproute.c: 1..256)
GROUP_WEIGHT = (1, 65536)  # nexthop_grp weight + weight_high hold weight-1 (16 bits since Linux 6.12; 8 before)
FRR_WEIGHT = (1, 65535)  # zebra's nexthop weight (printed only when non-zero: 0 never appears)
BUCKETS = (1, 65535)  # NHA_RES_GROUP_BUCKETS is a u16, and nexthop.c refuses 0
BUCKET_INDEX = (0, 65534)
TIMER_S = (0, U32_MAX // 100)  # idle/unbalanced timers: a u32 of clock ticks (USER_HZ 100), "Timer value too large"
ELAPSED_S = (0, 2**53)  # unbalanced_time, a bucket's idle_time: seconds since, finite and not negative
METRIC = (0, U32_MAX)  # RTA_PRIORITY is a u32
NH_ID = (1, U32_MAX)  # NHA_ID is a u32, 0 means "allocate one"


def shown(value: Any) -> str:
    """A value for an error message: repr, cut to 24 characters (a 5,000-digit number stays one short line)."""
    if isinstance(value, int) and value.bit_length() > 80:  # no repr(): Python refuses 4300+ digits
        return f"a {int((value.bit_length() - 1) * 0.30103) + 1}-digit number"
    text = repr(value)
    return text if len(text) <= 24 else text[:20] + "…" + text[-3:]


def bounded(value: Any, what: str, limits: tuple[int, int]) -> int:
    """``integer(value)`` within ``limits`` (inclusive); BadValue naming the value and the range otherwise."""
    lo, hi = limits
    if type(value) is not int:
        if isinstance(value, str) and len(value) > 24:  # longer than any u64 in decimal or hex
            raise BadValue(f"bad {what}: {shown(value)} (expected {lo}..{hi})")
        value = integer(value, what)
    if not lo <= value <= hi:
        raise BadValue(f"{what} {shown(value)} out of range {lo}..{hi}")
    return value


def seconds(value: Any, what: str, limits: tuple[int, int]) -> float:
    """A finite, non-negative number of seconds (int, float or its text) within ``limits``."""
    lo, hi = limits
    f: float | None = None
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        f = float(value) if abs(value) <= 2**63 else float("inf")
    elif isinstance(value, str) and len(value) <= 32:
        try:
            f = float(value)
        except ValueError:
            pass
    if f is None:
        raise BadValue(f"bad {what}: {shown(value)}")
    if not lo <= f <= hi:  # NaN fails both comparisons
        raise BadValue(f"{what} {shown(value)} out of range {lo}..{hi} s")
    return f


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
