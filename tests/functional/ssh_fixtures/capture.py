"""Capture the canned ``ip -j`` / sysctl outputs used by the SSH tests and bench.

Run once as root (``python3 tests/functional/ssh_fixtures/capture.py``): it builds a
spine and a leaf in throw-away ``atui-cap-*`` namespaces (veth pairs, documentation
ranges only), runs every LINUX_POLL command inside and writes ``<role>/<id>.out``.
"""

from __future__ import annotations

import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parents[2]))

from anycast_tui.collect.commands import LINUX_POLL  # noqa: E402
from anycast_tui.lab import netns  # noqa: E402

SPINE = [
    "link add swp1 type veth peer name peer1", "link set peer1 up",
    "link add swp2 type veth peer name peer2", "link set peer2 up",
    "link add swp3 type veth peer name peer3", "link set peer3 up",
    "link add swp4 type veth peer name peer4", "link set peer4 up",
    "addr add 198.18.0.1/32 dev lo",
    "addr add 198.18.1.0/31 dev swp1", "addr add 198.18.1.2/31 dev swp2",
    "addr add 198.18.1.4/31 dev swp3", "addr add 198.18.1.6/31 dev swp4",
    "link set swp1 up", "link set swp2 up", "link set swp3 up", "link set swp4 up",
    "route add 192.0.2.53/32 proto bgp metric 20 nexthop via 198.18.1.1 dev swp1 nexthop via 198.18.1.3 dev swp2"
    " nexthop via 198.18.1.5 dev swp3 nexthop via 198.18.1.7 dev swp4",
    "route add 198.18.0.11/32 proto bgp metric 20 via 198.18.1.1 dev swp1",
    "route add 198.18.0.12/32 proto bgp metric 20 via 198.18.1.3 dev swp2",
    "route add 198.18.0.13/32 proto bgp metric 20 via 198.18.1.5 dev swp3",
    "route add 198.18.0.14/32 proto bgp metric 20 via 198.18.1.7 dev swp4",
    "route add 203.0.113.0/24 dev lo proto static metric 100",
]

LEAF = [
    "link add swp1 type veth peer name peer1", "link set peer1 up",
    "link add swp2 type veth peer name peer2", "link set peer2 up",
    "link add swp3 type veth peer name peer3", "link set peer3 up",
    "link add swp4 type veth peer name peer4", "link set peer4 up",
    "addr add 198.18.0.11/32 dev lo",
    "addr add 198.18.1.1/31 dev swp1", "addr add 198.18.3.1/31 dev swp2",
    "addr add 198.18.2.0/31 dev swp3", "addr add 198.18.2.2/31 dev swp4",
    "link set swp1 up", "link set swp2 up", "link set swp3 up", "link set swp4 up",
    "nexthop add id 1 via 198.18.2.1 dev swp3 proto bgp",
    "nexthop add id 2 via 198.18.2.3 dev swp4 proto bgp",
    "nexthop add id 10 group 1/2 type resilient buckets 32 idle_timer 120 unbalanced_timer 0 proto bgp",
    "route add 192.0.2.53/32 nhid 10 proto bgp metric 20",
    "route add default proto bgp metric 20 nexthop via 198.18.1.0 dev swp1 nexthop via 198.18.3.0 dev swp2",
]


def main() -> int:
    for role, script, seed in (("spine", SPINE, 1234), ("leaf", LEAF, 1234)):
        ns = netns.create(f"atui-cap-{role}")
        try:
            for line in script:
                netns.ip(ns, *line.split())
            netns.sysctl(ns, "net.ipv4.fib_multipath_hash_policy", 1)
            netns.sysctl(ns, "net.ipv4.fib_multipath_hash_seed", seed)
            out = HERE / role
            out.mkdir(exist_ok=True)
            for cmd in LINUX_POLL:
                text = netns.run(ns, *cmd.argv).stdout
                (out / f"{cmd.id}.out").write_text(text)
        finally:
            netns.delete(ns)
    return 0


if __name__ == "__main__":
    sys.exit(main())
