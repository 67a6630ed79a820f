"""``anycast-tui whatif``: the blast radius of a next-hop failure or restore on one device, per mapping.

Same inputs as ``calc``.  With ``--fail``/``--restore`` one event, otherwise
every single failure of a multipath next hop.  For each event the flows that
would move are counted under the device's own mapping and, side by side, under
hash-threshold, modulo-N, resilient (simulated) and Maglev.
"""

from __future__ import annotations

import argparse
from typing import Any

from anycast_tui.cli import CliError
from anycast_tui.commands import jsonout
from anycast_tui.commands.calc import DEVICE, add_inputs, flow_json, load_device, load_flows
from anycast_tui.model.flows import FlowMeta
from anycast_tui.model.hashing import FlowArray
from anycast_tui.model.impact import MAPPINGS, Change, MappingImpact, WhatIfError, compare_mappings, each_single_failure
from anycast_tui.model.placement import HashCache, PlacementError
from anycast_tui.model.types import FabricSnapshot

EPILOG = """examples:
  anycast-tui whatif --routes routes.json --hash-policy 1 --hash-seed 4660 --flows flows.csv
  anycast-tui whatif --routes routes.json --nexthops nh.json --buckets buckets.json \\
      --hash-policy 1 --hash-seed 4660 --flows flows.csv --fail 198.19.2.2 --json

columns per mapping: moved / TCP reset / collateral (moved although they did not use the failed next hop).
mappings: actual (the device's own), hash-threshold (Linux plain routes), modulo-n (hash mod n, many ASICs),
resilient (Linux resilient groups, simulated), maglev (consistent hashing).
restore under resilient: the returning next hop only takes idle buckets, so nothing moves until the idle
timer runs out. --json adds per-flow before/after/moved (device's own mapping) and related-flow splits.
"""


def register(subparsers: Any) -> argparse.ArgumentParser:
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


def _events(args: argparse.Namespace, snap: FabricSnapshot) -> list[Change]:
    if args.fail:
        return [Change("fail_nexthop", DEVICE, args.fail)]
    if args.restore:
        return [Change("restore_nexthop", DEVICE, args.restore)]
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


def _table(results: list[tuple[Change, list[MappingImpact]]], n: int) -> str:
    names = [m.name for m in results[0][1]]
    ev_w = max(len("event"), *(len(c.target or c.label) for c, _ in results))
    cells = []
    for _, rows in results:
        cells.append([f"{r.moved}/{r.tcp_reset}/{r.collateral}" for r in rows])
    widths = [max(len(nm), *(len(c[k]) for c in cells)) for k, nm in enumerate(names)]
    lines = [f"{n} flows; each cell: moved/TCP reset/collateral",
             "  ".join([("fail" if results[0][0].kind == "fail_nexthop" else "restore").ljust(ev_w)]
                       + [nm.rjust(w) for nm, w in zip(names, widths)])]
    for (c, _), row in zip(results, cells):
        lines.append("  ".join([(c.target or c.label).ljust(ev_w)] + [v.rjust(w) for v, w in zip(row, widths)]))
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    mappings = [m.strip() for m in args.mappings.split(",") if m.strip()]
    bad = [m for m in mappings if m not in MAPPINGS]
    if bad or not mappings:
        raise CliError(f"unknown mapping {','.join(bad) or '(none)'} (use {','.join(MAPPINGS)})")
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
    if args.json:
        doc = {"flows": len(flows), "events": []}
        for change, rows in results:
            doc["events"].append({
                "event": change.kind, "device": change.device, "nexthop": change.target,
                "mappings": [{"name": r.name, "moved": r.moved, "tcp_reset": r.tcp_reset, "udp": r.udp,
                              "collateral": r.collateral} for r in rows],
                "splits": rows[0].impact.splits()[0] if rows[0].impact is not None else None,
                "per_flow": _flows_json(rows[0], flows, meta),
                "per_flow_mapping": rows[0].name,
            })
        jsonout.emit(doc)
    else:
        print(_table(results, len(flows)))
    return 0
