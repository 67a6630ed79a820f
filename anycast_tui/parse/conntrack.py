"""``conntrack -L`` (and ``/proc/net/nf_conntrack``-style ``-o extended``) -> ``ConntrackEntry`` records.

Line shape: ``[ipv4 2] PROTO NUM [TIMEOUT] [STATE] src= dst= [sport= dport=|type= code= id=] [packets= bytes=]
[UNREPLIED] src= dst= ... [ASSURED] mark= [secmark=] [zone=] use=``.  The first ``src=`` opens
the original direction, the second the reply one; per-direction counters and
ICMP fields go to ``extra`` prefixed ``orig_`` / ``reply_``; ``[FLAGS]`` go to
``flags``; ``mark`` and ``zone`` are modelled, every other ``key=value`` is
kept in ``extra``.  The trailer conntrack prints on stderr
(``conntrack v1.4.6 (conntrack-tools): N flow entries have been shown.``) and
``conntrack -E`` event tags (``[NEW]``, ``[DESTROY]``: ``("event", ...)``) are accepted.
"""

from __future__ import annotations

import itertools
import re

from anycast_tui.model.types import ConntrackEntry
from anycast_tui.parse._common import BadValue, address, lines_of, pair, shown, words
from anycast_tui.parse.errors import ParseError
from anycast_tui.parse.longtext import Text

KIND = "conntrack"

_TRAILER = re.compile(r"conntrack v\S+ \(conntrack-tools\): \d+ flow entries have been shown\.")
_DIRECTION_KEYS = frozenset({"src", "dst", "sport", "dport", "packets", "bytes", "type", "code", "id"})
_STATE = re.compile(r"[A-Z][A-Z_]*")
_EVENTS = frozenset({"[NEW]", "[UPDATE]", "[DESTROY]"})
_FAMILIES = {"ipv4": 4, "ipv6": 6}


def _uint(tok: str) -> bool:
    """A decimal number as conntrack prints it (bounded: no 5000-digit numbers)."""
    return tok.isascii() and tok.isdigit() and len(tok) <= 20


def _port(value: str, key: str, lineno: int, raw: str) -> int:
    if not _uint(value) or int(value) > 65535:
        raise ParseError(lineno, f"bad {key} {shown(value)}", KIND, raw)
    return int(value)


def _entry(toks: list[str], lineno: int, raw: str) -> ConntrackEntry:
    i = 0
    extra: list[tuple[str, str]] = []
    if toks[0] in _EVENTS:
        extra.append(("event", toks[0][1:-1]))
        i = 1
    family: int | None = None
    if i + 1 < len(toks) and toks[i] in _FAMILIES and _uint(toks[i + 1]):
        family = _FAMILIES[toks[i]]
        i += 2
    if i + 1 >= len(toks) or not _uint(toks[i + 1]) or "=" in toks[i]:
        raise ParseError(lineno, "expected a protocol name and number", KIND, raw)
    proto, proto_num = toks[i], int(toks[i + 1])
    if proto == "unknown":
        proto = str(proto_num)
    i += 2
    timeout: int | None = None
    if i < len(toks) and _uint(toks[i]):
        timeout = int(toks[i])
        i += 1
    state: str | None = None
    if i < len(toks) and _STATE.fullmatch(toks[i]):
        state = toks[i]
        i += 1
    dirs: list[dict[str, str]] = []
    phase = "dir"
    flags: list[str] = []
    mark = zone = None
    for tok in itertools.islice(toks, i, None):
        if tok.startswith("[") and tok.endswith("]") and len(tok) > 2:
            flags.append(tok[1:-1])
            if len(dirs) == 2:
                phase = "tail"
            continue
        key, eq, value = tok.partition("=")
        if not eq:
            raise ParseError(lineno, f"unexpected word {shown(tok)}", KIND, raw)
        if phase == "dir" and key == "src" and len(dirs) < 2:
            dirs.append({})
        if phase == "dir" and key in _DIRECTION_KEYS and dirs and key not in dirs[-1]:
            dirs[-1][key] = value
            if key not in ("src", "dst", "sport", "dport"):
                extra.append(pair(("orig_" if len(dirs) == 1 else "reply_") + key, value))
            continue
        if dirs:
            phase = "tail"
        if key in ("mark", "zone"):
            if not _uint(value):
                raise ParseError(lineno, f"bad {key} {shown(value)}", KIND, raw)
            if key == "mark":
                mark = int(value)
            else:
                zone = int(value)
        else:
            extra.append(pair(key, value))
    if not dirs or "src" not in dirs[0] or "dst" not in dirs[0]:
        raise ParseError(lineno, "missing src= / dst= of the original direction", KIND, raw)
    addrs: dict[str, str | None] = {}
    for n, d in enumerate(dirs):
        for key in ("src", "dst"):
            if key in d:
                try:
                    addr, fam = address(d[key])
                except BadValue as exc:
                    raise ParseError(lineno, str(exc), KIND, raw) from None
                if family is None:
                    family = fam
                elif fam != family:
                    raise ParseError(lineno, f"{key}={shown(d[key])} is not IPv{family}", KIND, raw)
                addrs[f"{n}{key}"] = addr
    ports: dict[str, int | None] = {}
    for n, d in enumerate(dirs):
        for key in ("sport", "dport"):
            ports[f"{n}{key}"] = _port(d[key], key, lineno, raw) if key in d else None
    return ConntrackEntry(
        proto, proto_num, timeout, state, addrs["0src"] or "", addrs["0dst"] or "", ports["0sport"],
        ports["0dport"], addrs.get("1src"), addrs.get("1dst"), ports.get("1sport"), ports.get("1dport"),
        family or 4, tuple(flags), mark, zone, tuple(extra))


def parse_conntrack(text: Text) -> list[ConntrackEntry]:
    """Parse ``conntrack -L [-o extended|id]`` output."""
    out: list[ConntrackEntry] = []
    for lineno, raw in enumerate(lines_of(text, KIND), 1):
        toks = words(raw)
        if not toks or _TRAILER.fullmatch(raw.strip()):
            continue
        out.append(_entry(toks, lineno, raw))
    return out


# ``[^\s=]`` (an address has no ``=``), not ``\S``: each ``src=`` tried scans only up to the next ``=``, so a line
# of ``src=src=src=...`` is matched in linear time (with ``\S+`` every one of them scanned the rest of the token).
_LINE = re.compile(r"(?:\[[A-Z]+\]\s+)?(?:ipv[46]\s+\d+\s+)?[a-z0-9-]+\s+\d+\s.*\bsrc=[^\s=]+\s+dst=[^\s=]+(?:\s.*)?")


def detect(text: str) -> str | None:
    """``conntrack`` when the first line is a conntrack entry or trailer, else None."""
    for raw in text.splitlines():
        line = raw.strip()
        if not line:
            continue
        return KIND if _LINE.fullmatch(line) or _TRAILER.fullmatch(line) else None
    return None
