"""The collector's command sets: chosen by platform and iproute2 version, never built from inventory text."""

from __future__ import annotations

import shlex

import pytest

from anycast_tui.collect.commands import (
    ALLOWED_LINES,
    COLLECTOR_LINES,
    FLOW_COMMANDS,
    FRR_RIB,
    FRR_RUNNING,
    FRR_ROUTES,
    LINUX_POLL,
    MONITOR,
    iproute2_version,
    poll_commands,
)


@pytest.mark.parametrize("text, version", [
    ("ip utility, iproute2-6.1.0, libbpf 1.1.2\n", (6, 1, 0)),
    ("ip utility, iproute2-5.10.0\n", (5, 10, 0)),
    ("ip utility, iproute2-v6.8.0-1\n", (6, 8, 0)),
    ("ip utility, iproute2-4.14\n", (4, 14)),
    ("ip utility, iproute2-ss130716\n", (3,)),
    ("BusyBox v1.36.1 multi-call binary.\n", None),
    ("", None),
])
def test_iproute2_version(text, version):
    assert iproute2_version(text) == version


def _ids(cmds):
    return [c.id for c in cmds]


def test_command_sets_follow_version_platform_and_flow_sources():
    assert poll_commands("linux", None) == LINUX_POLL  # unknown version: assume a current iproute2
    assert poll_commands("linux", (6, 1, 0)) == LINUX_POLL
    assert "buckets" not in _ids(poll_commands("linux", (5, 10, 0)))  # no resilient groups before 5.13
    assert "nexthops" in _ids(poll_commands("linux", (5, 10, 0)))
    assert "nexthops" not in _ids(poll_commands("linux", (5, 2)))
    old = poll_commands("linux", (4, 9))
    assert all("-j" not in c.argv for c in old) and {"routes4", "routes6", "addrs", "sysctl"} <= set(_ids(old))
    for platform in ("frr", "cumulus", "sonic"):
        assert poll_commands(platform, (6, 1))[-2:] == (FRR_RIB, FRR_RUNNING)  # RIB and BGP state in one vtysh
    assert FRR_RIB not in poll_commands("linux", (6, 1)) and FRR_RUNNING not in poll_commands("linux", (6, 1))
    srv = poll_commands("linux", (6, 1), ("ss", "conntrack"))
    assert srv[-3:] == (*FLOW_COMMANDS["ss"], *FLOW_COMMANDS["conntrack"])


def test_every_collector_line_is_a_plain_fixed_argv():
    assert ALLOWED_LINES <= COLLECTOR_LINES and MONITOR.line == "ip -o monitor route link nexthop"
    assert FRR_ROUTES[0].line == "vtysh -c 'show ip route json'"
    assert FRR_RIB.line == ("vtysh -c 'show ip route json' -c 'show ipv6 route json' "
                            "-c 'show bgp ipv4 unicast json' -c 'show bgp ipv6 unicast json'")
    for line in COLLECTOR_LINES:
        argv = shlex.split(line)
        assert argv[0] in ("ip", "sysctl", "vtysh", "ss", "conntrack"), line
        assert not any(ch in line for ch in ";&|`$<>\n"), line
