#!/usr/bin/env python3
"""Benchmark: route parsers on a large table vs bare ``json.loads`` of the same text.

    python3 bench/bench_parse.py [--routes 100000] [--ways 4] [--runs 5]

Input (generated, documentation ranges): ``ip -j route show`` JSON of N /32
routes in 198.18.0.0/15, each with W next hops drawn from 64 gateways in
198.19.254.0/24 (real tables repeat next hops), and the equivalent text.
Baseline (same run): ``json.loads`` of the JSON.  Goal: parse_ip_route_json
<= 2.5x json.loads.  Also reported: text parse rate, and what frozen-dataclass
construction alone costs (Route + Nexthop objects, to see if it dominates).
Medians of --runs repetitions.
"""

from __future__ import annotations

import argparse
import gc
import ipaddress
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Callable

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from anycast_tui.model.types import Nexthop, Route  # noqa: E402
from anycast_tui.parse.route import parse_ip_route, parse_ip_route_json  # noqa: E402

GOAL = 2.5


def generate(n: int, ways: int) -> tuple[str, str]:
    base = int(ipaddress.ip_address("198.18.0.0"))
    gws = [f"198.19.254.{i}" for i in range(1, 65)]
    items = []
    lines = []
    for i in range(n):
        dst = str(ipaddress.ip_address(base + i + 1))
        hops = [(gws[(i + k * 7) % 64], f"swp{(i + k) % 32 + 1}") for k in range(ways)]
        items.append('{"dst":"%s","protocol":"bgp","metric":20,"flags":[],"nexthops":[%s]}' % (
            dst, ",".join('{"gateway":"%s","dev":"%s","weight":1,"flags":["onlink"]}' % h for h in hops)))
        lines.append(f"{dst} proto bgp metric 20 \n"
                     + "".join(f"\tnexthop via {g} dev {d} weight 1 onlink \n" for g, d in hops))
    return "[" + ",".join(items) + "]\n", "".join(lines)


def median_times(fns: dict[str, Callable[[], object]], runs: int) -> dict[str, float]:
    """Median seconds per function; runs are interleaved so load changes hit every contender alike."""
    times: dict[str, list[float]] = {name: [] for name in fns}
    for _ in range(runs):
        for name, fn in fns.items():
            gc.collect()
            t = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - t)
    return {name: statistics.median(ts) for name, ts in times.items()}


def construct_only(n: int, ways: int) -> Callable[[], object]:
    """Build the same number of Route objects (next hops shared, as the parser interns them)."""
    nhs = tuple(Nexthop(f"198.19.254.{k}", f"swp{k}", 1, ("onlink",)) for k in range(ways))

    def run() -> list[Route]:
        return [Route("198.18.0.1/32", 4, "unicast", "main", "bgp", "global", 20, None, None, nhs, (), ())
                for _ in range(n)]
    return run


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--routes", type=int, default=100_000)
    ap.add_argument("--ways", type=int, default=4)
    ap.add_argument("--runs", type=int, default=5)
    args = ap.parse_args()

    js, text = generate(args.routes, args.ways)
    print(f"input: {args.routes} routes x {args.ways} next hops; JSON {len(js) / 1e6:.1f} MB, text {len(text) / 1e6:.1f} MB")

    from_json = parse_ip_route_json(js)
    from_text = parse_ip_route(text)
    if from_json != from_text or len(from_json) != args.routes:
        print("MISMATCH: text and JSON parse to different records", file=sys.stderr)
        return 1

    med = median_times({
        "loads": lambda: json.loads(js),
        "json": lambda: parse_ip_route_json(js),
        "text": lambda: parse_ip_route(text),
        "construct": construct_only(args.routes, args.ways),
    }, args.runs)
    t_loads, t_json, t_text, t_construct = med["loads"], med["json"], med["text"], med["construct"]

    ratio = t_json / t_loads
    print(f"json.loads (baseline)       median {t_loads * 1e3:8.1f} ms")
    print(f"parse_ip_route_json         median {t_json * 1e3:8.1f} ms  = {ratio:.2f}x json.loads "
          f"(goal <= {GOAL}x: {'MET' if ratio <= GOAL else 'NOT MET'}); {args.routes / t_json:,.0f} routes/s")
    print(f"parse_ip_route (text)       median {t_text * 1e3:8.1f} ms  = {args.routes / t_text:,.0f} routes/s")
    print(f"Route construction alone    median {t_construct * 1e3:8.1f} ms  "
          f"({t_construct / (t_json - t_loads) * 100 if t_json > t_loads else 0:.0f}% of the JSON parser's own time)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
