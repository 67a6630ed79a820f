"""``anycast-tui calc``: which next hop a device picks for a flow, from its collected tables (like cl-ecmpcalc).

Answers as for a forwarded packet (the ``ip route get … iif`` path): the
device's main/local tables, its nexthop objects and bucket tables, its hash
policy and seed.  Its inputs, shared with ``whatif``, are read by
:mod:`anycast_tui.commands.inputs`.
"""

from __future__ import annotations

import argparse
from typing import Any

from anycast_tui.commands import jsonout
from anycast_tui.commands.inputs import add_inputs, flow_json, load_compiled, load_flows
from anycast_tui.model.flows import FlowMeta
from anycast_tui.model.hashing import FlowArray
from anycast_tui.model.hashing import Placement
from anycast_tui.model.placement import PLACEMENTS, Outcome, Placed, place

EPILOG = """examples:
  ip -j route show > routes.json; ip -j nexthop show > nh.json; ip -j nexthop bucket show > buckets.json
  anycast-tui calc --routes routes.json --hash-policy 1 --hash-seed 0x1234 \\
      -p udp -s 203.0.113.10 --sport 32700 -d 192.0.2.53 --dport 53
  anycast-tui calc --routes routes.json --nexthops nh.json --buckets buckets.json \\
      --hash-policy 1 --hash-seed 4660 --flows flows.csv --json
  anycast-tui calc --device spine01 -c config/lab.toml -p tcp -s 203.0.113.7 --sport 40000 -d 192.0.2.53 --dport 443

flows CSV: header proto,src,sport,dst,dport[,ingress,group]; proto tcp, udp or a number.
placement: exact (bit-exact kernel model), approximate (simulated bucket table), unknown (seed 0:
random per boot, or an unmodelled policy) - then ask the device (ip route get).
"""


def register(subparsers: Any) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "calc", help="which next hop a device picks for a flow (like cl-ecmpcalc)",
        description="Which next hop a device picks for each flow, from its route/nexthop/bucket tables and "
        "hash settings, as for a forwarded packet (ip route get ... iif).",
        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_inputs(p)
    return p


def answers(placed: Placed, flows: FlowArray, meta: FlowMeta) -> list[dict[str, Any]]:
    """One JSON object per flow, in input order."""
    out = []
    for i in range(len(flows)):
        c = placed.choices[int(placed.choice[i])]
        obj = flow_json(flows, meta, i)
        placement = PLACEMENTS[int(placed.placement[i])]
        obj.update({"outcome": c.outcome.name.lower().replace("_", " "), "gateway": c.gateway, "dev": c.dev,
                    "route": c.route, "nhid": c.nhid, "placement": placement.value})
        if c.detail and c.outcome is not Outcome.FORWARD:
            obj["type"] = c.detail
        cands = placed.candidates(i)
        if placement is Placement.UNKNOWN and len(cands) > 1:
            obj.update(gateway=None, dev=None, nhid=None,
                       candidates=[{"gateway": x.gateway, "dev": x.dev, "nhid": x.nhid} for x in cands])
        reason = placed.reasons[int(placed.reason[i])]
        if reason:
            obj["reason"] = reason
        out.append(obj)
    return out


def _table(rows: list[dict[str, Any]]) -> str:
    head = ("proto", "src", "sport", "dst", "dport", "next hop", "placement")
    body = []
    for r in rows:
        if r.get("candidates"):
            nh = f"one of {len(r['candidates'])} next hops"
        elif r["outcome"] == "forward":
            nh = " ".join(x for x in (f"via {r['gateway']}" if r["gateway"] else "",
                                      f"dev {r['dev']}" if r["dev"] else "") if x)
        else:
            nh = r.get("type") or r["outcome"]
        body.append((r["proto"], r["src"], str(r["sport"]), r["dst"], str(r["dport"]), nh, r["placement"]))
    widths = [max(len(h), *(len(b[k]) for b in body)) if body else len(h) for k, h in enumerate(head)]
    lines = ["  ".join(h.ljust(w) for h, w in zip(head, widths)).rstrip()]
    lines += ["  ".join(v.ljust(w) for v, w in zip(b, widths)).rstrip() for b in body]
    reasons = sorted({r["reason"] for r in rows if r.get("reason")})
    lines += [f"note: {x}" for x in reasons]
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    _state, device = load_compiled(args)  # compiled once, placed on as it is
    flows, meta = load_flows(args)
    placed = place(device, flows)
    rows = answers(placed, flows, meta)
    if args.json:
        print(jsonout.lines(rows))
    else:
        print(_table(rows))
    return 0
