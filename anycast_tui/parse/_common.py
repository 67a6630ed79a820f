"""Helpers shared by the parsers: canonical addresses, JSON loading, extra values, lines of text.

Every parser is linear in time and memory on any input: a text line longer than ``MAX_LINE``
(longer than any line of the commands parsed: the longest, ``ip -o route`` of a multipath route,
is bounded by the kernel's 64 KiB netlink attribute) is refused before it is split into tokens;
values are checked for length before they are converted; error messages quote device text
through :func:`shown` only.
"""

from __future__ import annotations

import ipaddress
import json
import re
from functools import lru_cache
from typing import Any, Callable, Iterator, TypeVar

from anycast_tui.parse.errors import ParseError, shown
from anycast_tui.parse.longtext import LongText, Text

T = TypeVar("T")

__all__ = ["shown"]  # re-exported: the one way device text is quoted in messages (anycast_tui.parse.errors)

# Dotted quads as the kernel prints them (no leading zeros), optionally with a length.
_O = r"(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])"
_V4 = _O + r"(?:\." + _O + r"){3}"
_V4_PREFIX = re.compile(_V4 + r"/(?:3[0-2]|[12]?[0-9])").fullmatch
_V4_ADDR = re.compile(_V4).fullmatch
# Longest address text: ``ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.255`` (45) and a ``%scope``.
_MAX_ADDR = 64
MAX_LINE = 1 << 20  # characters of one text line: as the collector's stream lines (1 MiB)


class BadValue(ValueError):
    """Raised by the helpers below; parsers turn it into a ParseError with a line number."""


@lru_cache(maxsize=65536)
def _prefix_slow(text: str) -> tuple[str, int]:
    if len(text) > _MAX_ADDR + 4:  # ipaddress would split it into parts and repr it whole, twice
        raise BadValue(f"not an address or prefix: {shown(text)}")
    try:
        if "/" in text:
            # ip_interface, not ip_network: host bits (if a capture has them) are kept, not masked away.
            iface = ipaddress.ip_interface(text)
            return f"{iface.ip}/{iface.network.prefixlen}", iface.version
        addr = ipaddress.ip_address(text)
    except ValueError:
        raise BadValue(f"not an address or prefix: {shown(text)}") from None
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
        if len(text) > _MAX_ADDR:
            raise ValueError
        addr = ipaddress.ip_address(text)
    except ValueError:
        raise BadValue(f"not an address: {shown(text)}") from None
    return str(addr), addr.version


def integer(text: Any, what: str) -> int:
    if isinstance(text, bool):
        raise BadValue(f"bad {what}: {shown(text)}")
    if isinstance(text, int):
        return text
    if isinstance(text, str) and len(text) <= 24:  # longer than any u64 in decimal or hex
        try:
            return int(text, 0) if text[:2].lower() == "0x" else int(text)
        except ValueError:
            pass
    raise BadValue(f"bad {what}: {shown(text)}")


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
GROUP_MEMBERS = 8191  # NHA_GROUP is one netlink attribute: its u16 length holds 8191 8-byte nexthop_grp entries


def bounded(value: Any, what: str, limits: tuple[int, int]) -> int:
    """``integer(value)`` within ``limits`` (inclusive); BadValue naming the value and the range otherwise."""
    lo, hi = limits
    if type(value) is not int:
        try:
            value = integer(value, what)
        except BadValue:
            raise BadValue(f"bad {what}: {shown(value)} (expected {lo}..{hi})") from None
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
    data = _decoded(json.loads, text, kind)
    if isinstance(data, dict):
        data = [data]
    if not isinstance(data, list):
        raise ParseError(1, f"expected a JSON array of objects, got {type(data).__name__}", kind)
    for i, item in enumerate(data):
        if not isinstance(item, dict):
            raise ParseError(0, f"item {i}: expected an object, got {type(item).__name__}", kind)
    return data


def _decoded(decode: Callable[..., T], text: str, kind: str, *args: int) -> T:
    """``decode(text, *args)`` with every way JSON can be bad as one ParseError."""
    try:
        return decode(text, *args)
    except json.JSONDecodeError as exc:
        raise ParseError(exc.lineno, f"invalid JSON: {exc.msg} (column {exc.colno})", kind) from None
    except RecursionError:
        raise ParseError(0, "JSON nested too deeply", kind) from None
    except ValueError as exc:  # e.g. an integer longer than Python's 4300-digit limit
        raise ParseError(0, f"invalid JSON: {exc}", kind) from None


_DECODER = json.JSONDecoder()
_JSON_WS = re.compile(r"[ \t\n\r]*")
_JSON_SEP = re.compile(r"[ \t\n\r]*([,\]])[ \t\n\r]*")


def json_items(text: Text, kind: str) -> Iterator[dict[str, Any]]:
    """The objects of JSON output one at a time, as :func:`load_json` gives them in a list.

    A top-level array is decoded an item at a time, so only one item's objects are alive at once:
    the decoded items of a 200 MB ``ip -j route show`` (600,000 routes) took 1.4 GB as a list of dicts,
    and they were also what kept the process's heap that large after the records were made (issue 16).
    A :class:`LongText` is read a block at a time too (:func:`_long_json_items`).
    """
    if isinstance(text, LongText):
        yield from _long_json_items(text, kind)
        return
    if not isinstance(text, str):
        raise ParseError(0, "input is not text", kind)
    pos = _skip_ws(text, 0)
    if pos == len(text):
        return
    if text[pos] != "[":
        yield from load_json(text, kind)  # one object (as some tools print), or the error
        return
    pos = _skip_ws(text, pos + 1)
    if text.startswith("]", pos):
        _json_end(text, pos + 1, kind)
        return
    i = 0
    while True:
        obj, pos = _decoded(_DECODER.raw_decode, text, kind, pos)
        if not isinstance(obj, dict):
            raise ParseError(0, f"item {i}: expected an object, got {type(obj).__name__}", kind)
        sep = _JSON_SEP.match(text, pos)
        if sep is None:
            raise _json_error(text, pos, "Expecting ',' delimiter", kind)
        yield obj
        del obj
        i += 1
        pos = sep.end()
        if sep.group(1) == "]":
            _json_end(text, pos, kind)
            return


MAX_ITEM = 16 << 20  # characters of one item of a LongText's JSON array (a route object is a few KB at most)
BLOCK_DROP = 1 << 20  # characters decoded before they are dropped from a _Window
_SCALAR_START = frozenset('"-0123456789tfn')
_NUMBER_GOES_ON = frozenset("0123456789.eE+-")


class _Window:
    """A LongText's blocks as one sliding string: ``buf`` starts at line ``line0``, after ``col0`` characters
    of that line; what a parser is done with is dropped (:meth:`drop`), so only ~2 blocks are held."""

    def __init__(self, text: LongText) -> None:
        self._blocks = text.blocks()
        self.buf = ""
        self.line0, self.col0 = 1, 0
        self.exhausted = False
        self.drops = 0

    def more(self, want: int) -> bool:
        """Read blocks until ``buf`` holds ``want`` characters; False when nothing more came."""
        got = False
        parts = [self.buf]
        size = len(self.buf)
        while size < want and not self.exhausted:
            block = next(self._blocks, None)
            if block is None:
                self.exhausted = True
                break
            parts.append(block)
            size += len(block)
            got = True
        if got:
            self.buf = "".join(parts)
        return got

    def drop(self, pos: int) -> int:
        """Forget ``buf[:pos]``; returns the new position of what was at ``pos`` (0)."""
        nl = self.buf.count("\n", 0, pos)
        if nl:
            self.line0 += nl
            self.col0 = pos - self.buf.rfind("\n", 0, pos) - 1
        else:
            self.col0 += pos
        self.buf = self.buf[pos:]
        self.drops += 1
        return 0

    def ws(self, pos: int) -> int:
        """The position of the next character that is not JSON whitespace (``len(buf)`` at the end)."""
        while True:
            pos = _skip_ws(self.buf, pos)
            if pos < len(self.buf) or not self.more(len(self.buf) + 1):
                return pos
            pos = self.drop(pos) if pos > BLOCK_DROP else pos  # a long run of whitespace is not kept

    def error(self, pos: int, msg: str, kind: str) -> ParseError:
        line = self.buf.count("\n", 0, pos)
        column = pos - self.buf.rfind("\n", 0, pos) if line else self.col0 + pos + 1
        return ParseError(self.line0 + line, f"invalid JSON: {msg} (column {column})", kind)

    def decode(self, pos: int, kind: str) -> tuple[Any, int]:
        """One JSON value at ``pos`` (reading more until it is whole, up to ``MAX_ITEM``) and where it ends."""
        while True:
            try:
                value, end = _DECODER.raw_decode(self.buf, pos)
            except json.JSONDecodeError as exc:
                if self.exhausted or len(self.buf) - pos > MAX_ITEM:
                    if not self.exhausted:
                        raise ParseError(self.error(pos, "", kind).line, f"a JSON value longer than {MAX_ITEM:,} "
                                         "characters: longer than any item of this output", kind) from None
                    raise self.error(exc.pos, exc.msg, kind) from None
            except RecursionError:
                raise ParseError(0, "JSON nested too deeply", kind) from None
            except ValueError as exc:  # e.g. an integer longer than Python's 4300-digit limit
                raise ParseError(0, f"invalid JSON: {exc}", kind) from None
            else:
                if isinstance(value, (dict, list, str)) or self.exhausted or (
                        end < len(self.buf) and self.buf[end] not in _NUMBER_GOES_ON):
                    return value, end  # a number that reaches the end of buf may go on in the next block
            self.more(len(self.buf) + max(len(self.buf) - pos, 1))  # at least doubles what the value has


def _long_json_items(text: LongText, kind: str) -> Iterator[dict[str, Any]]:
    """:func:`json_items` of a LongText: the same objects and errors, ~2 blocks and one item in memory."""
    w = _Window(text)
    pos = w.ws(0)
    if pos == len(w.buf):
        return
    first = w.buf[pos]
    if first != "[":
        if first != "{" and first not in _SCALAR_START:
            raise w.error(pos, "Expecting value", kind)
        value, pos = w.decode(pos, kind)
        _long_end(w, pos, kind)
        if not isinstance(value, dict):
            raise ParseError(1, f"expected a JSON array of objects, got {type(value).__name__}", kind)
        yield value
        return
    pos = w.ws(pos + 1)
    if w.buf.startswith("]", pos):
        _long_end(w, pos + 1, kind)
        return
    i = 0
    while True:
        if pos > BLOCK_DROP:
            pos = w.drop(pos)
        obj, pos = w.decode(pos, kind)
        if not isinstance(obj, dict):
            raise ParseError(0, f"item {i}: expected an object, got {type(obj).__name__}", kind)
        end, drops = pos, w.drops
        pos = w.ws(pos)
        if pos == len(w.buf) or w.buf[pos] not in ",]":  # where the str path says it, unless that was dropped
            raise w.error(end if drops == w.drops else pos, "Expecting ',' delimiter", kind)
        yield obj
        del obj
        i += 1
        if w.buf[pos] == "]":
            _long_end(w, pos + 1, kind)
            return
        pos = w.ws(pos + 1)


def _long_end(w: _Window, pos: int, kind: str) -> None:
    pos = w.ws(pos)
    if pos != len(w.buf):
        raise w.error(pos, "Extra data", kind)


def _skip_ws(text: str, pos: int) -> int:
    m = _JSON_WS.match(text, pos)  # always matches (maybe nothing)
    return m.end() if m else pos


def _json_end(text: str, pos: int, kind: str) -> None:
    pos = _skip_ws(text, pos)
    if pos != len(text):
        raise _json_error(text, pos, "Extra data", kind)


def _json_error(text: str, pos: int, msg: str, kind: str) -> ParseError:
    line = text.count("\n", 0, pos) + 1
    column = pos - text.rfind("\n", 0, pos)
    return ParseError(line, f"invalid JSON: {msg} (column {column})", kind)


_WORD = re.compile(r"\S+")
LONG_LINE = 1 << 16  # characters: a line longer than this is split into shared words


def words(line: str) -> list[str]:
    """``line.split()``.  On a line longer than ``LONG_LINE`` the words are made one at a time and each
    distinct word is one shared string: a long line of short repeated words costs a pointer per word,
    not a string object per word (~60 bytes, 20 times a 3-character word) all alive at once."""
    if len(line) <= LONG_LINE:
        return line.split()
    seen: dict[str, str] = {}
    keep = seen.setdefault
    return [keep(w, w) for w in map(re.Match.group, _WORD.finditer(line))]


def pieces(text: str, sep: str) -> Iterator[str]:
    """``text.split(sep)`` one piece at a time: a long line's pieces are not all alive at once."""
    start = 0
    while (end := text.find(sep, start)) >= 0:
        yield text[start:end]
        start = end + 1
    yield text[start:]


@lru_cache(maxsize=4096)
def _pair(key: str, value: str) -> tuple[str, str]:
    return (key, value)


def pair(key: str, value: str) -> tuple[str, str]:
    """``(key, value)`` for ``extra``: short pairs are shared (a long line repeating an attribute keeps
    one tuple, not one per repetition); long values are not cached (the cache must not hold big text)."""
    return _pair(key, value) if len(value) <= 64 and len(key) <= 64 else (key, value)


_BLOCK = 1 << 20  # characters split into lines at a time


def lines_of(text: Text, kind: str) -> Iterator[str]:
    """The lines of ``text`` (as ``str.splitlines``), a block at a time; ParseError at a line longer than
    ``MAX_LINE``.  Lazily: the lines of a 200 MB answer of one-character lines (a flooding device) were
    800 MB of list before the parser read the first one (issue 16).  A LongText is read a block at a time."""
    if isinstance(text, LongText):
        yield from _long_lines(text, kind)
        return
    if not isinstance(text, str):
        raise ParseError(0, "input is not text", kind)
    pos, lineno, size = 0, 0, len(text)
    while pos < size:
        end = text.find("\n", pos + _BLOCK) if size - pos > _BLOCK else -1
        end = size if end < 0 else end + 1  # blocks end after a newline: a line boundary, \r\n kept whole
        lines = text[pos:end].splitlines()
        if end - pos > MAX_LINE:
            _checked(lines, lineno, kind)
        lineno += len(lines)
        yield from lines
        pos = end


def _long_lines(text: LongText, kind: str) -> Iterator[str]:
    """:func:`lines_of` of a LongText: its blocks cut after their last newline, each piece split as a str."""
    rest, lineno = "", 0
    for block in text.blocks():
        buf = rest + block
        cut = buf.rfind("\n") + 1
        if not cut and len(buf) <= MAX_LINE:
            rest = buf
            continue
        if not cut:  # no newline in over MAX_LINE characters: other line breaks, or one line too long
            *lines, rest = buf.splitlines(keepends=True)
            lines = [ln.rstrip("\r\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029") for ln in lines]
            if len(rest) > MAX_LINE:
                yield from _checked(lines, lineno, kind)
                lineno += len(lines)
                raise _long_line(lineno + 1, rest, kind)
        else:
            lines, rest = buf[:cut].splitlines(), buf[cut:]
        yield from _checked(lines, lineno, kind)
        lineno += len(lines)
    if rest:
        lines = rest.splitlines()
        yield from _checked(lines, lineno, kind)


def _checked(lines: list[str], lineno: int, kind: str) -> list[str]:
    """``lines`` (numbered from ``lineno + 1``), or ParseError at the first longer than ``MAX_LINE``."""
    if lines and max(map(len, lines)) > MAX_LINE:
        for n, line in enumerate(lines, lineno + 1):
            if len(line) > MAX_LINE:
                raise _long_line(n, line, kind)
    return lines


def _long_line(n: int, line: str, kind: str) -> ParseError:
    return ParseError(n, f"line of {len(line):,} characters: longer than any {kind} line (at most {MAX_LINE:,})",
                      kind, line)
