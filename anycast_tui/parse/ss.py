"""``ss`` output -> ``Socket`` records (``-t -u -a -H -n -e -m -o -i -p``, ``-O``, ``state X`` filters).

* Columns: ``[Netid] [State] Recv-Q Send-Q Local Peer [info...]``.  ss drops
  the Netid column when one socket type is asked for (``-t``) and the State
  column under a one-state filter (``state established``): pass ``netid`` /
  ``state`` to fill them.  A header line (``Netid``/``State ... Recv-Q``) is
  skipped; ``-H`` output has none.
* Addresses: ``addr:port``, ``[v6]:port``, ``addr%dev:port`` (VRF / interface
  scope -> ``local_dev``), ``*:*``; old unbracketed IPv6 (``:::22``) too.
  Service names (no ``-n``) leave the port None and go to ``extra`` as
  ``local_service`` / ``peer_service``.  Unix sockets: ``local``/``peer`` are
  the path / ``*`` and the inode numbers go to ``extra`` (``local_inode``,
  ``peer_inode``); netlink, packet and vsock endpoints are kept as printed.
* Info after the addresses (same line, or continuation lines that start with a
  tab or are indented deeper than the socket lines): ``key:value`` tokens as
  ``(key, value)`` with one level of parentheses removed (``users``,
  ``timer``, ``skmem``, ``uid``, ``ino``, ``sk``, ``rtt`` ...), ``send`` /
  ``pacing_rate`` / ``delivery_rate`` with their value, ``<->``-style
  shutdown marks as ``("shutdown", mark)``, other words as ``(word, "")``.
* ``-i`` timers: :func:`heard_ms` reads ``lastrcv`` / ``lastack`` (ms) from ``extra``.
"""

from __future__ import annotations

import itertools
import re
from typing import Iterable

from anycast_tui.model.types import Socket
from anycast_tui.parse._common import BadValue, address, lines_of, pair, shown, words
from anycast_tui.parse.errors import ParseError
from anycast_tui.parse.longtext import Text

KIND = "ss"

NETIDS = frozenset({"tcp", "udp", "raw", "mptcp", "sctp", "dccp", "icmp6", "u_str", "u_dgr", "u_seq", "nl",
                    "p_raw", "p_dgr", "v_str", "v_dgr", "xdp", "tipc", "???"})
STATES = frozenset({"ESTAB", "SYN-SENT", "SYN-RECV", "FIN-WAIT-1", "FIN-WAIT-2", "TIME-WAIT", "UNCONN",
                    "CLOSE-WAIT", "LAST-ACK", "LISTEN", "CLOSING", "UNKNOWN", "BOUND", "NEW-SYN-RECV"})
_IP_NETIDS = frozenset({"tcp", "udp", "raw", "mptcp", "sctp", "dccp", "icmp6", ""})
_SPACED_KEYS = frozenset({"send", "pacing_rate", "delivery_rate", "pacing_rate_max"})
_SHUTDOWN = frozenset({"<->", "-->", "<--", "---", "->", "<-"})
_Extra = list[tuple[str, str]]


def _is_uint(tok: str) -> bool:
    """A queue size as ss prints it (bounded: no 5000-digit numbers)."""
    return tok.isascii() and tok.isdigit() and len(tok) <= 20


def _indent(raw: str) -> int:
    return len(raw) - len(raw.lstrip())


def _tokens(words: Iterable[str]) -> list[str]:
    """Whitespace-split words as tokens, keeping parenthesised groups (``users:(("a b",pid=1,fd=3))``) whole.

    A group's words are joined once when it closes (or the words end): linear, however many words it has.
    """
    out: list[str] = []
    group: list[str] = []
    depth = 0
    for tok in words:
        if depth > 0:
            group.append(tok)
        else:
            out.append(tok)
        depth += tok.count("(") - tok.count(")")
        if depth <= 0:
            depth = 0
            if group:
                out[-1] = " ".join([out[-1], *group])
                group.clear()
    if group:
        out[-1] = " ".join([out[-1], *group])
    return out


def _info(tokens: list[str], extra: _Extra) -> None:
    i = 0
    while i < len(tokens):
        tok = tokens[i]
        i += 1
        if tok in _SPACED_KEYS and i < len(tokens):
            extra.append(pair(tok, tokens[i]))
            i += 1
        elif tok in _SHUTDOWN:
            extra.append(pair("shutdown", tok))
        elif ":" in tok and not tok.startswith(":"):
            key, _, value = tok.partition(":")
            if value.startswith("(") and value.endswith(")"):
                value = value[1:-1]
            extra.append(pair(key, value))
        else:
            extra.append(pair(tok, ""))


def _endpoint(tok: str, netid: str, side: str, extra: _Extra, lineno: int,
              raw: str) -> tuple[str, int | None, str | None]:
    """``addr[%dev]:port`` of an IP socket -> (canonical address or ``*``, port, dev)."""
    if netid not in _IP_NETIDS:
        return tok, None, None
    host, sep, port_s = tok.rpartition(":")
    if not sep or not host:
        if tok == "*":
            return "*", None, None
        raise ParseError(lineno, f"bad {side} address {shown(tok)}: no port", KIND, raw)
    dev = None
    if host.startswith("["):
        close = host.find("]")
        if close < 0:
            raise ParseError(lineno, f"bad {side} address {shown(tok)}", KIND, raw)
        rest = host[close + 1:]
        host = host[1:close]
        if rest.startswith("%") and len(rest) > 1:
            dev = rest[1:]
        elif rest:
            raise ParseError(lineno, f"bad {side} address {shown(tok)}", KIND, raw)
    if dev is None and "%" in host:
        host, _, dev = host.partition("%")
        if not dev:
            raise ParseError(lineno, f"bad {side} address {shown(tok)}: empty scope", KIND, raw)
    if host != "*":
        try:
            host = address(host)[0]
        except BadValue as exc:
            raise ParseError(lineno, f"bad {side} address: {exc}", KIND, raw) from None
    port: int | None = None
    if port_s.isdigit() and port_s.isascii() and len(port_s) <= 5:
        port = int(port_s)
        if port > 65535:
            raise ParseError(lineno, f"{side} port out of range: {port_s}", KIND, raw)
    elif port_s.isdigit():
        raise ParseError(lineno, f"{side} port out of range: {shown(port_s)}", KIND, raw)
    elif port_s and port_s != "*":
        extra.append((f"{side}_service", port_s))
    elif not port_s:
        raise ParseError(lineno, f"bad {side} address {shown(tok)}: empty port", KIND, raw)
    return host, port, dev


def _socket(toks: list[str], lineno: int, raw: str, netid: str | None, state: str | None) -> Socket:
    i = 0
    nid = netid or ""
    if toks[0] in NETIDS:
        nid = toks[0]
        i = 1
    st = state or ""
    if i < len(toks) and toks[i] in STATES:
        st = toks[i]
        i += 1
    if len(toks) < i + 2 or not (_is_uint(toks[i]) and _is_uint(toks[i + 1])):
        raise ParseError(lineno, "expected Recv-Q and Send-Q numbers", KIND, raw)
    recv_q, send_q = int(toks[i]), int(toks[i + 1])
    i += 2
    extra: _Extra = []
    if nid.startswith("u_"):
        if len(toks) < i + 4:
            raise ParseError(lineno, "expected local and peer path and inode", KIND, raw)
        local, linode, peer, pinode = toks[i:i + 4]
        i += 4
        extra += [("local_inode", linode), ("peer_inode", pinode)]
        lport = pport = None
        ldev = pdev = None
    else:
        if len(toks) < i + 2:
            raise ParseError(lineno, "expected local and peer address", KIND, raw)
        local, lport, ldev = _endpoint(toks[i], nid, "local", extra, lineno, raw)
        peer, pport, pdev = _endpoint(toks[i + 1], nid, "peer", extra, lineno, raw)
        i += 2
    _info(_tokens(itertools.islice(toks, i, None)), extra)
    return Socket(nid, st, recv_q, send_q, local, lport, peer, pport, ldev, pdev, tuple(extra))


# Keys ``ss -i`` prints from a TCP socket's tcp_info (iproute2 ss.c tcp_show_info); ``mss`` is non-zero on
# every connected socket, so an ESTAB line with none of them was printed without ``-i``.
_TCP_INFO_KEYS = frozenset({"mss", "rto", "cwnd", "rcv_space", "lastsnd", "lastrcv", "lastack"})


def heard_ms(sock: Socket) -> int | None:
    """Milliseconds since a TCP socket last heard from its peer: the smaller of ``lastrcv`` (data received)
    and ``lastack`` (ACK received) of ``ss -i``.  ss prints each only when non-zero (``if (s->lastrcv)
    out(" lastrcv:%u", ...)``), so a missing one is 0 when the socket has tcp info at all; None when it
    has none (``ss`` without ``-i``).  ``lastsnd`` is left out: a socket retransmitting to a peer that is
    gone keeps sending.  A value that is not a number is a ParseError (line 0: the socket's line is gone).
    """
    extra = dict(sock.extra)
    if not _TCP_INFO_KEYS & extra.keys():
        return None
    out = []
    for key in ("lastrcv", "lastack"):
        value = extra.get(key, "0")
        if not _is_uint(value):
            raise ParseError(0, f"bad {key} {shown(value)}", KIND)
        out.append(int(value))
    return min(out)


def parse_ss(text: Text, *, netid: str | None = None, state: str | None = None) -> list[Socket]:
    """Parse ``ss`` output; ``netid`` / ``state`` fill columns ss leaves out (``-t``, ``state established``)."""
    lines = lines_of(text, KIND)
    out: list[Socket] = []
    base: int | None = None
    extra_lines: list[str] = []

    def flush() -> None:
        if extra_lines and out:
            s = out[-1]
            extra: _Extra = list(s.extra)
            _info(_tokens(w for ln in extra_lines for w in words(ln)), extra)
            out[-1] = Socket(s.netid, s.state, s.recv_q, s.send_q, s.local, s.local_port, s.peer, s.peer_port,
                             s.local_dev, s.peer_dev, tuple(extra))
        extra_lines.clear()

    for lineno, raw in enumerate(lines, 1):
        toks = words(raw)
        if not toks:
            continue
        ind = _indent(raw)
        if toks[0] in ("Netid", "State") and "Recv-Q" in toks:
            base = ind
            continue
        if base is not None and (raw.startswith("\t") or ind > base):
            if not out:
                raise ParseError(lineno, "continuation line before any socket", KIND, raw)
            extra_lines.append(raw.strip())
            continue
        flush()
        if base is None:
            base = ind
        out.append(_socket(toks, lineno, raw, netid, state))
    flush()
    return out


_SS_LINE = re.compile(r"(?:(?:%s)\s+)?(?:(?:%s)\s+)?\d+\s+\d+\s+\S+\s+\S+.*" % (
    "|".join(re.escape(n) for n in sorted(NETIDS)), "|".join(re.escape(s) for s in sorted(STATES))))


def detect(text: str) -> str | None:
    """``ss`` when the first line is an ss header or socket line, else None."""
    for raw in text.splitlines():
        toks = words(raw)
        if not toks:
            continue
        if toks[0] in ("Netid", "State") and "Recv-Q" in toks:
            return KIND
        line = raw.strip()
        if _SS_LINE.fullmatch(line) and (toks[0] in NETIDS or toks[0] in STATES or ":" in line) \
                and "src=" not in line:
            return KIND
        return None
    return None
