#!/usr/bin/env python3
"""Benchmark: peak RSS and time of every parser kind on a 10 MB single-line input, in a fresh child process.

    python3 bench/bench_parse_rss.py [--mb 10] [--runs 3] [--kinds ip-route,ss] [--shapes line,token]
                                     [--before /tmp/oldtree]

Inputs (generated, documentation ranges), one line of --mb MB per kind and shape:

* ``line``: a valid record whose line goes on and on with what that command repeats on a line
  (next hops of ``ip -o route``, group members, ``ss -p`` users, conntrack and ``-o`` address
  attributes, FRR next hop fields ...); for the JSON kinds the one line ``ip -j`` prints, of many
  records (the normal shape of their output).
* ``token``: the record's head followed by one --mb MB garbage token (``sysctl``: a value).
* ``words``: the record's head followed by short unmodelled words, ``k v`` (``k=v`` for conntrack; JSON
  kinds: the ``line`` input), the shape that cost most before (a string object per word).

Each figure is the child's peak RSS (``ru_maxrss``) parsing that input.  Baseline (same child code,
same run): the child's RSS after reading the input and not parsing it (``json.loads`` of it for the
JSON kinds).  Goal: peak <= 20x the input (200 MB for 10 MB).  ``--before TREE`` runs the same
children on another checkout (e.g. ``git worktree add /tmp/oldtree HEAD~1``) too, interleaved.
Medians of --runs child processes each.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
GOAL = 20

# kind -> (head, unit repeated to the size, tail) of the ``line`` shape
_NH = '{"gateway":"198.18.1.2","dev":"swp1","weight":1,"flags":["onlink"]}'
_ROUTE_JSON = '{"dst":"198.18.%d.%d","protocol":"bgp","metric":20,"flags":[],"nexthops":[%s,%s]}'
LINE: dict[str, tuple[str, str, str]] = {
    "ip-route": ("198.18.0.0/15 proto bgp metric 20 ", "\\\tnexthop via 198.18.1.2 dev swp1 weight 1 ", "\n"),
    "ip-route-json": ("[", _ROUTE_JSON % (1, 2, _NH, _NH) + ",", _ROUTE_JSON % (1, 3, _NH, _NH) + "]\n"),
    "ip-link": ("2: swp1: <BROADCAST,MULTICAST,UP,LOWER_UP> mtu 1500 qdisc noqueue state UP ",
                "\\    altname swp1-long-name-here ", "\n"),
    "ip-link-json": ("[", '{"ifindex":2,"ifname":"swp1","flags":["BROADCAST","UP"],"mtu":1500,"qdisc":"noqueue",'
                     '"operstate":"UP","link_type":"ether","address":"62:73:9d:a6:e1:b1"},',
                     '{"ifindex":3,"ifname":"swp2","flags":[],"mtu":1500}]\n'),
    "ip-addr": ("2: swp1: <UP> mtu 1500\\    inet 198.18.1.1/24 brd 198.18.1.255 scope global ",
                "secondary ", "swp1\\       valid_lft forever preferred_lft forever\n"),
    "ip-addr-json": ('[{"ifindex":2,"ifname":"swp1","flags":["UP"],"mtu":1500,"addr_info":[',
                     '{"family":"inet","local":"198.18.1.1","prefixlen":24,"scope":"global","label":"swp1",'
                     '"valid_life_time":4294967295,"preferred_life_time":4294967295},',
                     '{"family":"inet6","local":"fe80::1","prefixlen":64,"scope":"link"}]}]\n'),
    "ip-nexthop": ("id 10 group ", "1,3/", "2 proto zebra\n"),
    "ip-nexthop-json": ("[", '{"id":1,"gateway":"198.18.1.2","dev":"swp1","scope":"link","flags":[]},',
                        '{"id":10,"group":[{"id":1},{"id":2,"weight":3}],"flags":[]}]\n'),
    "ip-nexthop-bucket": ("id 11 index 0 nhid 1 idle_time 0.11 ", "trap ", "\n"),
    "ip-nexthop-bucket-json": ("[", '{"id":11,"bucket":{"index":0,"idle_time":0.11,"nhid":2},"flags":[]},',
                               '{"id":11,"bucket":{"index":1,"idle_time":0.11,"nhid":1},"flags":[]}]\n'),
    "sysctl-values": ("net.ipv4.fib_multipath_hash_seed = ", "1", "\n"),
    "frr-route-json": ('{"198.18.0.0/15":[{"prefix":"198.18.0.0/15","protocol":"bgp","selected":true,'
                       '"installed":true,"distance":20,"metric":0,"nexthops":[',
                       '{"fib":true,"ip":"198.18.1.2","afi":"ipv4","interfaceName":"swp1","active":true,'
                       '"weight":1},', '{"fib":true,"ip":"198.18.2.2","interfaceName":"swp2","active":true}]}]}\n'),
    "frr-route": ("B>* 198.18.0.0/15 [20/0] via 198.18.1.2, swp1, weight 1", ", label 16", ", 00:01:02\n"),
    "frr-bgp-json": ('{"vrfName":"default","routerId":"198.18.255.1","localAS":65001,"routes":{"198.18.0.0/15":[',
                     '{"valid":true,"multipath":true,"pathFrom":"external","nexthops":[{"ip":"198.18.1.2",'
                     '"afi":"ipv4","used":true}]},', '{"valid":true,"bestpath":true,"nexthops":[{"ip":"198.18.2.2",'
                     '"used":true}]}]}}\n'),
    "ss": ("tcp ESTAB 0 0 192.0.2.53:80 203.0.113.7:41001 users:((", '"php-fpm: pool www",pid=1234,fd=6),(',
           '"nginx",pid=1,fd=3)) ino:1234 sk:1\n'),
    "conntrack": ("tcp 6 431999 ESTABLISHED src=203.0.113.7 dst=192.0.2.53 sport=41001 dport=80 ",
                  "[ASSURED] ", "src=192.0.2.53 dst=203.0.113.7 sport=80 dport=41001 mark=0 use=1\n"),
}
# kind -> (head, tail) of the ``token`` shape: one garbage token in between
TOKEN: dict[str, tuple[str, str]] = {
    "ip-route": ("198.18.0.0/15 via ", " dev swp1\n"),
    "ip-route-json": ('[{"dst":"', '"}]\n'),
    "ip-link": ("2: swp1: <UP> mtu ", "\n"),
    "ip-link-json": ('[{"ifindex":2,"ifname":"swp1","mtu":"', '"}]\n'),
    "ip-addr": ("2: swp1: <UP> mtu 1500\\    inet ", "/24\n"),
    "ip-addr-json": ('[{"ifname":"swp1","addr_info":[{"family":"inet","local":"', '","prefixlen":24}]}]\n'),
    "ip-nexthop": ("id 10 via ", " dev swp1\n"),
    "ip-nexthop-json": ('[{"id":10,"gateway":"', '"}]\n'),
    "ip-nexthop-bucket": ("id 11 index ", " nhid 1\n"),
    "ip-nexthop-bucket-json": ('[{"id":11,"bucket":{"index":"', '","nhid":1}}]\n'),
    "sysctl-values": ("net.ipv4.fib_multipath_hash_seed = ", "\n"),
    "frr-route-json": ('{"', '":[{"protocol":"bgp","installed":true,"nexthops":[]}]}\n'),
    "frr-route": ("B>* 198.18.0.0/15 [20/0] via ", ", swp1\n"),
    "frr-bgp-json": ('{"routes":{"198.18.0.0/15":[{"valid":true,"nexthops":[{"ip":"', '"}]}]}}\n'),
    "ss": ("tcp ESTAB 0 0 ", " 203.0.113.7:41001\n"),
    "conntrack": ("tcp 6 431999 ESTABLISHED src=", " dst=192.0.2.53\n"),
}
# The garbage token: mostly digits and dots (what address and number parsers split and convert).
GARBAGE_UNIT = "1.2:3/"
SHAPES = ("line", "token", "words")


def make_input(kind: str, shape: str, size: int) -> str:
    if shape == "line" or shape == "words" and kind.endswith("json"):
        head, unit, tail = LINE[kind]
    elif shape == "words":
        head, tail, unit = LINE[kind][0], "\n", "k=v " if kind == "conntrack" else "k v "
    else:
        (head, tail), unit = TOKEN[kind], GARBAGE_UNIT
    n = max(1, (size - len(head) - len(tail)) // len(unit))
    return head + unit * n + tail


# --------------------------------------------------------------------------- child


def child(kind: str, path: str, mode: str) -> None:
    """Import the parsers, read the input, then ``mode``: none (baseline), loads (JSON baseline) or parse."""
    sys.set_int_max_str_digits(4300)
    from anycast_tui.parse.detect import parse_as
    from anycast_tui.parse.errors import ParseError

    text = Path(path).read_text()
    result = "read"
    t = time.perf_counter()
    if mode == "loads":
        json.loads(text)
        result = "loaded"
    elif mode == "parse":
        try:
            got = parse_as(text, kind)
            result = f"ok: {len(got) if isinstance(got, list) else type(got).__name__}"
        except ParseError as exc:
            result = f"ParseError ({len(str(exc))} chars): {str(exc)[:90]!r}"
    dt = time.perf_counter() - t
    peak_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(json.dumps({"peak": peak_kb * 1024, "time": dt, "result": result}))


def run_child(tree: Path, kind: str, path: str, mode: str, timeout: float) -> dict:
    env = dict(os.environ, PYTHONPATH=str(tree), PYTHONHASHSEED="0")
    try:
        out = subprocess.run([sys.executable, str(Path(__file__).resolve()), "--child", kind, path, mode],
                             capture_output=True, text=True, env=env, cwd=str(tree), timeout=timeout)
    except subprocess.TimeoutExpired:
        return {"peak": float("nan"), "time": float("inf"), "result": f"not done after {timeout:.0f} s (killed)"}
    if out.returncode != 0:
        return {"peak": float("nan"), "time": float("nan"), "result": f"exit {out.returncode}: "
                + (out.stderr.strip().splitlines() or ["?"])[-1][:80]}
    return json.loads(out.stdout)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--mb", type=float, default=10)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--kinds", default=",".join(LINE))
    ap.add_argument("--shapes", default=",".join(SHAPES))
    ap.add_argument("--before", type=Path, help="another checkout to measure too (the code before a change)")
    ap.add_argument("--timeout", type=float, default=600, help="seconds a child may take (then not run again)")
    ap.add_argument("--child", nargs=3, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        child(*args.child)
        return 0

    size = int(args.mb * 1e6)
    trees = [("after", ROOT)] + ([("before", args.before.resolve())] if args.before else [])
    print(f"input: one line of {size / 1e6:.1f} MB per kind and shape; medians of {args.runs} child processes; "
          f"goal: peak RSS <= {GOAL}x input ({GOAL * size / 1e6:.0f} MB)")
    print(f"{'kind':24} {'shape':5} {'tree':6} {'baseline':>9} {'peak':>9} {'x input':>7} {'time':>8}  result")
    worst = 0.0
    with tempfile.TemporaryDirectory() as tmp:
        for kind in args.kinds.split(","):
            for shape in args.shapes.split(","):
                path = os.path.join(tmp, "input")
                Path(path).write_text(make_input(kind, shape, size))
                base_mode = "loads" if kind.endswith("json") else "none"
                runs: dict[str, dict[str, list[dict]]] = {name: {"base": [], "parse": []} for name, _ in trees}
                for _ in range(args.runs):
                    for name, tree in trees:
                        if runs[name]["parse"] and runs[name]["parse"][-1]["time"] == float("inf"):
                            continue  # it did not end once: not again
                        runs[name]["base"].append(run_child(tree, kind, path, base_mode, args.timeout))
                        runs[name]["parse"].append(run_child(tree, kind, path, "parse", args.timeout))
                for name, _ in trees:
                    base = statistics.median(r["peak"] for r in runs[name]["base"])
                    peak = statistics.median(r["peak"] for r in runs[name]["parse"])
                    dt = statistics.median(r["time"] for r in runs[name]["parse"])
                    ratio = peak / size
                    if name == "after":
                        worst = max(worst, ratio if ratio == ratio else float("inf"))
                    print(f"{kind:24} {shape:5} {name:6} {base / 1e6:7.0f}MB {peak / 1e6:7.0f}MB {ratio:6.1f}x "
                          f"{dt:7.2f}s  {runs[name]['parse'][-1]['result']}", flush=True)
    print(f"worst peak: {worst:.1f}x input (goal <= {GOAL}x: {'MET' if worst <= GOAL else 'NOT MET'})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
