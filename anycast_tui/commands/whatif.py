"""``anycast-tui whatif``: the blast radius of a next-hop failure or restore on one device, per mapping.

Same inputs as ``calc``.  With ``--fail``/``--restore`` one event, otherwise
every single failure of a multipath next hop.  For each event the flows that
would move are counted under the device's own mapping and, side by side, under
hash-threshold, modulo-N, resilient (simulated) and Maglev.
"""

from __future__ import annotations

import argparse
import ipaddress
import sys
from typing import TYPE_CHECKING, Any

from anycast_tui.commands import jsonout
from anycast_tui.commands.inputs import DEVICE, add_inputs, flow_json, load_device, load_flows, load_live
from anycast_tui.errors import CliError
from anycast_tui.model.flows import FlowMeta, synthetic_flows
from anycast_tui.model.flowarray import FlowArray
from anycast_tui.model.impact import MappingImpact, compare_mappings
from anycast_tui.model.whatif import MAPPINGS, WhatIf, WhatIfError, WhatIfKind, each_single_failure
from anycast_tui.model.paths import address_map, neighbour_names
from anycast_tui.model.placement import HashCache, PlacementError
from anycast_tui.model.types import FabricSnapshot
from anycast_tui.commands.argtypes import Subcommands

if TYPE_CHECKING:
    from anycast_tui.collect.inventory import Inventory

# The TUI's sample (impacttracker.ImpactTracker's defaults): flows of this many clients to the first anycast address.
SAMPLE_CLIENTS, SAMPLE_FLOWS = 200, 10_000

EPILOG = """examples:
  anycast-tui whatif --routes routes.json --hash-policy 1 --hash-seed 4660 --flows flows.csv
  anycast-tui whatif --routes routes.json --nexthops nh.json --buckets buckets.json \\
      --hash-policy 1 --hash-seed 4660 --flows flows.csv --fail 198.19.2.2 --json
  anycast-tui whatif --device spine01 -c config/lab.toml    live, on the TUI's sample of flows

with --device: every device of CONFIG is polled once, so that next hops are named by their neighbours; without
flows, the TUI's sample: 10000 flows of 200 clients (203.0.113.0/24) to the first anycast prefix of CONFIG.

columns per mapping: moved / TCP reset / collateral (moved although they did not use the failed next hop).
mappings: actual (the device's own), hash-threshold (Linux plain routes), modulo-n (hash mod n, many ASICs),
resilient (Linux resilient groups, simulated), maglev (consistent hashing).
restore under resilient: the returning next hop only takes idle buckets, so nothing moves until the idle
timer runs out. --json adds per-flow before/after/moved (device's own mapping) and related-flow splits.
"""


def register(subparsers: Subcommands) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "whatif", help="flows moved by each possible next-hop failure, per mapping",
        description="Blast radius of a next-hop failure or restore on one device: flows moved, TCP flows reset "
        "and collateral flows, under the device's mapping and under the alternatives side by side.",
        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_inputs(p)
    ev = p.add_mutually_exclusive_group()
    ev.add_argument("--fail", metavar="NEXTHOP", help="gateway address or dev name that fails")
    ev.add_argument("--restore", metavar="NEXTHOP", help="gateway address or dev name (dead/linkdown) that comes back")
    p.add_argument("--mappings", metavar="LIST", default=",".join(MAPPINGS),
                   help=f"comma-separated subset of {','.join(MAPPINGS)}")
    return p


def _events(args: argparse.Namespace, snap: FabricSnapshot) -> list[WhatIf]:
    if args.fail:
        return [WhatIf(WhatIfKind.FAIL_NEXTHOP, DEVICE, args.fail)]
    if args.restore:
        return [WhatIf(WhatIfKind.RESTORE_NEXTHOP, DEVICE, args.restore)]
    events = each_single_failure(snap, devices=False)
    if not events:
        raise CliError("no multipath route in --routes: no single failure to try (use --fail NEXTHOP)")
    return events


def _flows_json(rows: MappingImpact, flows: FlowArray, meta: FlowMeta) -> list[dict[str, Any]]:
    imp = rows.impact
    assert imp is not None
    prefix = DEVICE + " "
    labels = [t[len(prefix):] if t.startswith(prefix) else t.replace(DEVICE + ": ", "") for t in imp.labels]
    out = []
    for i in range(len(flows)):
        obj = flow_json(flows, meta, i)
        obj.update(before=labels[int(imp.before_end[i])], after=labels[int(imp.after_end[i])],
                   moved=bool(imp.moved[i]), tcp_reset=bool(imp.tcp_reset[i]), collateral=bool(imp.collateral[i]))
        out.append(obj)
    return out


def _table(results: list[tuple[WhatIf, list[MappingImpact]]], n: int, hops: dict[tuple[str, str], str]) -> str:
    names = [m.name for m in results[0][1]]
    labels = [hops.get((c.device, c.target or ""), c.target or c.label) for c, _ in results]
    ev_w = max(len("event"), *map(len, labels))
    cells = []
    for _, rows in results:
        cells.append([f"{r.moved}/{r.tcp_reset}/{r.collateral}" for r in rows])
    widths = [max(len(nm), *(len(c[k]) for c in cells)) for k, nm in enumerate(names)]
    lines = [f"{n} flows; each cell: moved/TCP reset/collateral",
             "  ".join([("fail" if results[0][0].kind is WhatIfKind.FAIL_NEXTHOP else "restore").ljust(ev_w)]
                       + [nm.rjust(w) for nm, w in zip(names, widths)])]
    for label, row in zip(labels, cells):
        lines.append("  ".join([label.ljust(ev_w)] + [v.rjust(w) for v, w in zip(row, widths)]))
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    mappings = [m.strip() for m in args.mappings.split(",") if m.strip()]
    bad = [m for m in mappings if m not in MAPPINGS]
    if bad or not mappings:
        raise CliError(f"unknown mapping {','.join(bad) or '(none)'} (use {','.join(MAPPINGS)})")
    owners: dict[str, str] = {}
    if args.device:
        state, fabric, inventory = load_live(args, fabric=True)
        owners = address_map(fabric)
        flows, meta = _flows(args, inventory)
    else:
        state = load_device(args)
        flows, meta = load_flows(args)
    snap = FabricSnapshot(0, {DEVICE: state})
    cache = HashCache(flows)
    results = []
    for change in _events(args, snap):
        try:
            rows = compare_mappings(snap, change, flows, DEVICE, mappings=mappings, group=meta.group, cache=cache,
                                    keep=bool(args.json))
        except (WhatIfError, PlacementError) as exc:
            raise CliError(str(exc)) from None
        results.append((change, rows))
    hops = neighbour_names(((c.device, c.target) for c, _ in results), owners)
    if args.json:
        doc = {"flows": len(flows), "events": []}
        for change, rows in results:
            doc["events"].append({
                "event": change.kind.value, "device": args.device, "nexthop": change.target,
                "neighbour": owners.get(change.target or ""),
                "mappings": [{"name": r.name, "moved": r.moved, "tcp_reset": r.tcp_reset, "udp": r.udp,
                              "collateral": r.collateral} for r in rows],
                "splits": rows[0].impact.splits()[0] if rows[0].impact is not None else None,
                "per_flow": _flows_json(rows[0], flows, meta),
                "per_flow_mapping": rows[0].name,
            })
        jsonout.emit(doc)
    else:
        print(_table(results, len(flows), hops))
    return 0


def _flows(args: argparse.Namespace, inventory: Inventory) -> tuple[FlowArray, FlowMeta]:
    """The flows given, else (--device) the TUI's sample to the first IPv4 anycast prefix of the inventory."""
    if args.flows or any(x is not None for x in (args.proto, args.src, args.dst)):
        return load_flows(args)
    prefixes = (*inventory.anycast_prefixes, *inventory.device(args.device).anycast_prefixes)
    v4 = [p for p in prefixes if ipaddress.ip_network(p, strict=False).version == 4]
    if not v4:
        raise CliError(f"no flow: give --flows CSV or one flow (-p -s -d), or anycast_prefixes in {args.config} "
                       "(the TUI's sample flows go to the first IPv4 one)")
    dst = str(ipaddress.ip_network(v4[0], strict=False).network_address)
    print(f"flows: the TUI's sample, {SAMPLE_FLOWS} flows of {SAMPLE_CLIENTS} clients to {dst}", file=sys.stderr)
    return synthetic_flows(SAMPLE_CLIENTS, SAMPLE_FLOWS, dst=dst), FlowMeta()
