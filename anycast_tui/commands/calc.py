"""``anycast-tui calc``: which next hop a device picks for a flow, from its collected tables (like cl-ecmpcalc).

Answers as for a forwarded packet (the ``ip route get … iif`` path): the
device's main/local tables, its nexthop objects and bucket tables, its hash
policy and seed.  Its inputs, shared with ``whatif``, are read by
:mod:`anycast_tui.commands.inputs`.
"""

from __future__ import annotations

import argparse
import sys

from anycast_tui.commands.argtypes import Subcommands
from anycast_tui.commands.calcout import Answers, out_format
from anycast_tui.commands.inputs import add_inputs, load_compiled, load_flows
from anycast_tui.errors import CliError
from anycast_tui.model.placement import place

EPILOG = """examples:
  ip -j route show > routes.json; ip -j nexthop show > nh.json; ip -j nexthop bucket show > buckets.json
  anycast-tui calc --routes routes.json --hash-policy 1 --hash-seed 0x1234 \\
      -p udp -s 203.0.113.10 --sport 32700 -d 192.0.2.53 --dport 53
  anycast-tui calc --routes routes.json --nexthops nh.json --buckets buckets.json \\
      --hash-policy 1 --hash-seed 4660 --flows flows.csv --json
  anycast-tui calc --device spine01 -c config/lab.toml -p tcp -s 203.0.113.7 --sport 40000 -d 192.0.2.53 --dport 443

  anycast-tui calc --routes routes.json --hash-policy 1 --hash-seed 4660 --flows flows.parquet --out answers.parquet

flows file: CSV with a header proto,src,sport,dst,dport[,ingress,group] (proto tcp, udp or a number; # comments),
or Parquet with those columns (told by its PAR1 magic bytes, not its name).
--out: .json as --json; .csv and .parquet: the flow's columns, then
outcome,gateway,dev,route,nhid,placement,type,reason,candidates (candidates: where the placement is unknown).
placement: exact (bit-exact kernel model), approximate (simulated bucket table), unknown (seed 0:
random per boot, or an unmodelled policy) - then ask the device (ip route get).
"""


def register(subparsers: Subcommands) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "calc", help="which next hop a device picks for a flow (like cl-ecmpcalc)",
        description="Which next hop a device picks for each flow, from its route/nexthop/bucket tables and "
        "hash settings, as for a forwarded packet (ip route get ... iif).",
        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_inputs(p)
    p.add_argument("--out", metavar="FILE",
                   help="write the answers to FILE instead of printing them: .json (as --json), .csv or .parquet "
                        "(the flow's columns, then outcome,gateway,dev,route,nhid,placement,type,reason,candidates)")
    return p


def run(args: argparse.Namespace) -> int:
    fmt = None
    if args.out:
        fmt = out_format(args.out)
        if fmt is None:
            raise CliError(f"--out {args.out}: unknown format (name it .json, .csv or .parquet)")
    _state, device = load_compiled(args)  # compiled once, placed on as it is
    flows, meta = load_flows(args)
    answers = Answers(place(device, flows), flows, meta)
    if fmt is None:
        sys.stdout.flush()
        (answers.write_json if args.json else answers.write_table)(sys.stdout.buffer)
        return 0
    try:
        if fmt == "parquet":
            answers.write_parquet(args.out)
        else:
            with open(args.out, "wb") as out:
                (answers.write_json if fmt == "json" else answers.write_csv)(out)
    except OSError as exc:
        raise CliError(f"--out {args.out}: {exc.strerror or exc}") from None
    return 0
