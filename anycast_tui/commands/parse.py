"""``anycast-tui parse FILE [--as KIND] [--json]``: normalised records of a command output, or the samples of a
capture of export datagrams (``--as sflow`` / ``--as ipfix``, or any pcap/pcapng file: ``parse/exportcap.py``).

Indentation is ignored (each text line is taken stripped; continuation lines are
known by their first word), so excerpts indented by a host document parse as
the raw output would.  Bad input exits 2 with one line naming FILE and the line.
"""

from __future__ import annotations

import argparse
import socket
import sys
from typing import Any

from anycast_tui.commands import jsonout
from anycast_tui.commands.argtypes import Subcommands
from anycast_tui.errors import CliError
from anycast_tui.model.types import (
    BgpMultipath, Bucket, ConntrackEntry, HashSettings, Interface, NexthopGroup, NexthopTable, Route, Socket,
)
from anycast_tui.model.samples import FlowSample
from anycast_tui.parse import exportcap
from anycast_tui.parse.detect import KINDS, Records, detect_kind, parse_as, to_jsonable
from anycast_tui.parse.errors import ParseError
from anycast_tui.parse.nexthop import format_entry
from anycast_tui.safetext import safe

EPILOG = """examples:
  ip -j route show table all > routes.json
  anycast-tui parse routes.json --json     normalised JSON records
  ip nexthop show | anycast-tui parse -    readable lines from stdin
  anycast-tui parse capture.txt --as ip-route
  tcpdump -w sflow.pcap udp port 6343
  anycast-tui parse --as sflow sflow.pcap --json    the sFlow v5 samples of a capture, per-exporter counts
  anycast-tui parse --as ipfix export.pcapng        IPFIX / NetFlow v9 records (a pcap/pcapng is detected too)

kinds: """ + ", ".join(KINDS + exportcap.KINDS)


def register(subparsers: Subcommands) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "parse",
        help="normalised records of an ip / sysctl command output, or of a capture of sFlow/IPFIX datagrams",
        description="Parse the output of ip route/link/addr/nexthop (text or -j JSON) or the hash sysctls "
        "into normalised records. Exits 2 with the line number on input it cannot parse. A tcpdump capture "
        "(pcap or pcapng) of sFlow v5, IPFIX or NetFlow v9 export datagrams (any UDP port, told by their "
        "version field) gives the sampled packets / flow records and, per exporter, the datagrams, samples, "
        "skipped records and malformed datagrams with their reasons.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("file", metavar="FILE", help="file with the command output; - reads stdin")
    p.add_argument("--as", dest="kind", metavar="KIND", choices=KINDS + exportcap.KINDS,
                   help="the command that produced FILE (default: detected); sflow or ipfix (IPFIX and NetFlow "
                        "v9): FILE is a capture and only those datagrams are decoded")
    p.add_argument("--json", action="store_true", help="print JSON records instead of readable lines")
    return p


def _read(path: str) -> str:
    try:
        if path == "-":
            data = sys.stdin.buffer.read()
        else:
            with open(path, "rb") as fh:
                data = fh.read()
    except OSError as exc:
        raise CliError(f"{path}: {exc.strerror or exc}") from None
    return data.decode("utf-8", errors="replace")


def _route_lines(r: Route) -> list[str]:
    head = f"{r.dst:<22} {r.type:<11} table {r.table:<8} proto {r.protocol or '-':<7} metric {r.metric}"
    if r.nhid is not None:
        head += f" nhid {r.nhid}"
    if r.prefsrc:
        head += f" src {r.prefsrc}"
    if r.flags:
        head += " [" + ",".join(r.flags) + "]"
    if r.extra:
        head += " " + " ".join(f"{k}={v}" for k, v in r.extra)
    out = [head]
    for nh in r.nexthops:
        s = "    " + (f"via {nh.gateway} " if nh.gateway else "") + (f"dev {nh.dev} " if nh.dev else "")
        s += f"weight {nh.weight}"
        if nh.flags:
            s += " [" + ",".join(nh.flags) + "]"
        out.append(s)
    return out


def _iface_lines(i: Interface) -> list[str]:
    out = [f"{i.ifindex if i.ifindex is not None else '-':>3} {i.name:<16} {i.operstate:<8} "
           f"<{','.join(i.flags)}> mtu {i.mtu if i.mtu is not None else '-'} {i.link_type or '-'} {i.mac or ''}".rstrip()
           + (f" master {i.master}" if i.master else "")]
    for a in i.addresses:
        out.append(f"    {a.local}/{a.prefixlen} scope {a.scope or '-'}" + (" " + " ".join(a.flags) if a.flags else ""))
    return out


def _ep(addr: str, port: int | None) -> str:
    host = f"[{addr}]" if ":" in addr else addr
    return host if port is None else f"{host}:{port}"


def render_text(records: Records) -> str:
    """Readable lines, one record (plus indented next hops / addresses) at a time."""
    lines: list[str] = []
    if isinstance(records, HashSettings):
        lines = [f"{k}: {v}" for k, v in to_jsonable(records).items()]
    elif isinstance(records, NexthopTable):
        for e in (*records.objects, *records.groups):
            lines.append(format_entry(e))
            for b in e.bucket_table if isinstance(e, NexthopGroup) else ():
                lines.append(f"    bucket {b.index} -> nhid {b.nhid} idle {b.idle_time:g}s")
    else:
        for r in records:
            if isinstance(r, Route):
                lines += _route_lines(r)
            elif isinstance(r, Interface):
                lines += _iface_lines(r)
            elif isinstance(r, Bucket):
                lines.append(f"group {r.group_id} bucket {r.index} -> nhid {r.nhid} idle {r.idle_time:g}s"
                             + (" [" + ",".join(r.flags) + "]" if r.flags else ""))
            elif isinstance(r, Socket):
                lines.append(f"{r.netid or '-'} {r.state} {_ep(r.local, r.local_port)} -> {_ep(r.peer, r.peer_port)}")
            elif isinstance(r, ConntrackEntry):
                lines.append(f"{r.proto} {r.state or '-'} {_ep(r.src, r.sport)} -> {_ep(r.dst, r.dport)}"
                             + (" [" + ",".join(r.flags) + "]" if r.flags else ""))
            elif isinstance(r, BgpMultipath):
                lines.append(f"{r.prefix} vrf {r.vrf}: {r.paths} paths, {r.valid} valid, best {r.bestpath or '-'}, "
                             f"multipath {', '.join(r.multipath) or '-'}")
    return "\n".join(lines) + ("\n" if lines else "")


def _addr(packed: bytes) -> str | None:
    if not packed:
        return None
    return socket.inet_ntop(socket.AF_INET if len(packed) == 4 else socket.AF_INET6, packed)


def sample_json(s: FlowSample) -> dict[str, Any]:
    """One sample as ``parse --json`` prints it: addresses as text."""
    return {"exporter": s.exporter, "kind": s.kind.value, "time": s.received, "source_id": s.source_id,
            "sampling_rate": s.sampling_rate, "input_if": s.input_if, "output_if": s.output_if,
            "output_discarded": s.output_discarded, "output_multiple": s.output_multiple, "family": s.family,
            "proto": s.proto, "src": _addr(s.src), "sport": s.sport, "dst": _addr(s.dst), "dport": s.dport,
            "flowlabel": s.flowlabel, "tcp_flags": s.tcp_flags, "packets": s.packets, "octets": s.octets,
            "vlan_in": s.vlan_in, "vlan_out": s.vlan_out, "nexthop": _addr(s.nexthop)}


def _out(s: FlowSample) -> str:
    if s.output_discarded:
        return "discarded"
    if s.output_multiple:
        return "multiple" if s.output_multiple < 0 else f"{s.output_multiple} ports"
    return str(s.output_if) if s.output_if is not None else "-"


def _run_capture(args: argparse.Namespace) -> int:
    kind = args.kind if args.kind in exportcap.KINDS else None
    try:
        got = exportcap.read_capture(args.file, kind)
    except ParseError as exc:
        raise CliError(f"{args.file}: {exc.reason}".replace("\n", " ")) from None
    except OSError as exc:
        raise CliError(f"{args.file}: {exc.strerror or exc}") from None
    if args.json:
        doc = {"kind": kind or "any", "udp_datagrams": got.udp_datagrams, "other_datagrams": got.other_datagrams,
               "capture_skipped": got.capture_skipped, "exporters": [c.to_json() for c in got.exporters],
               "samples": [sample_json(s) for s in got.samples]}
        sys.stdout.write(jsonout.dumps(doc, indent=1, ensure_ascii=False) + "\n")
        return 0
    lines = [f"{got.udp_datagrams} UDP datagrams, {got.other_datagrams} of another kind"
             + "".join(f", {n} {what}" for what, n in got.capture_skipped.items())]
    for c in got.exporters:
        lines.append(f"exporter {safe(c.exporter)} ({c.kind}): {c.datagrams} datagrams, {c.samples} samples, "
                     f"{c.counter_samples} counter samples, {c.drops} drops"
                     + "".join(f"; skipped {n} {safe(w)}" for w, n in c.skipped.items())
                     + "".join(f"; malformed {n}: {safe(w)}" for w, n in c.malformed.items()))
    for s in got.samples:
        lines.append(f"{s.received:.6f} {safe(s.exporter)} {s.kind.value} {s.proto} {_ep(_addr(s.src) or '', s.sport)} -> "
                     f"{_ep(_addr(s.dst) or '', s.dport)} in {s.input_if if s.input_if is not None else '-'} "
                     f"out {_out(s)} 1:{s.sampling_rate or '?'} {s.packets} pkts {s.octets} bytes")
    sys.stdout.write("\n".join(lines) + "\n")
    return 0


def run(args: argparse.Namespace) -> int:
    if args.kind in exportcap.KINDS or (args.kind is None and args.file != "-"
                                         and exportcap.is_capture_file(args.file)):
        return _run_capture(args)
    text = _read(args.file)
    try:
        kind = args.kind or detect_kind(text)
        records = parse_as(text, kind)
    except ParseError as exc:
        where = f"line {exc.line}: " if exc.line else ""
        raise CliError(f"{args.file}: {where}{exc.reason}".replace("\n", " ")) from None
    except Exception as exc:  # a parser bug: still one line, never a traceback
        raise CliError(f"{args.file}: internal error ({type(exc).__name__}: {exc}); please report".replace("\n", " "),
                       code=1) from None
    if args.json:
        sys.stdout.write(jsonout.dumps(to_jsonable(records), indent=2, ensure_ascii=False) + "\n")
    else:
        sys.stdout.write(render_text(records))
    return 0
