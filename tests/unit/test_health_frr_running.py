"""FRR's running configuration -> nexthop-groups, and the ``resilient-not-in-effect`` rule.

Texts: a real ``show running-config`` of FRR 8.4.4 (the lab's spine01 with pbrd carrying two nexthop-groups,
captured by tests/lab/test_health_frr_config.py); the configuration reported in FRR#16489 (FRR 10.0.1, where the
resilient options were ignored); and a group as FRR ≥ 8.5 writes it with every nexthop option
(lib/nexthop_group.c, ``nexthop_group_write``).  The rule runs on simulated spines whose kernel state (their
``ip -j`` outputs through the real parsers) has resilient groups, or plain multipath routes."""

from __future__ import annotations

from pathlib import Path

import pytest

from anycast_tui.collect.commands import COLLECTOR_LINES, FRR_RUNNING, OPTIONAL_IDS
from anycast_tui.lab.sim import SimConfig, SimFabric
from anycast_tui.model.health import ConfiguredGroup, evaluate
from anycast_tui.parse.errors import ParseError
from anycast_tui.parse.frr_running import parse_nexthop_groups

LAB_84 = (Path(__file__).resolve().parent.parent / "fixtures" / "parse" / "frr-running-config-8.4.txt").read_text()
ISSUE_16489 = """\
nexthop-group resilence
 resilient buckets 32 idle-timer 100 unbalanced-timer 100
 nexthop 172.16.240.1
 nexthop 172.16.241.2
exit
"""
FRR_10 = """\
Building configuration...

Current configuration:
!
frr version 10.0.1
hostname r1
!
nexthop-group B
 resilient buckets 32 idle-timer 100 unbalanced-timer 500
 backup-group BK
 nexthop 2001:db8::1 eth0 onlink weight 3
 nexthop 192.0.2.1 nexthop-vrf blue label 100
 nexthop eth2
 nexthop 198.51.100.9 eth3 backup-idx 0
exit
!
nexthop-group BK
 nexthop 203.0.113.1 eth9
exit
!
router bgp 65000
 neighbor 198.51.100.1 remote-as 65001
exit
!
end
"""


def test_the_fixed_command_is_read_only_and_optional():
    assert FRR_RUNNING.argv == ("vtysh", "-c", "show running-config")
    assert FRR_RUNNING.line in COLLECTOR_LINES and FRR_RUNNING.id in OPTIONAL_IDS


def test_real_frr_84_running_config():
    got = parse_nexthop_groups(LAB_84)
    assert got == (ConfiguredGroup("ANYCAST", (("198.18.17.1", "leaf01"), ("198.18.17.3", "leaf02"),
                                               ("198.18.17.5", "leaf03"), ("198.18.17.7", "leaf04"))),
                   ConfiguredGroup("SPARE", (("198.18.17.1", "leaf01"),)))
    assert not any(g.resilient for g in got)


def test_the_frr_16489_configuration():
    (g,) = parse_nexthop_groups(ISSUE_16489)
    assert g == ConfiguredGroup("resilence", (("172.16.240.1", None), ("172.16.241.2", None)), 32, 100, 100)
    assert g.resilient


def test_every_nexthop_form_as_frr_writes_it():
    b, bk = parse_nexthop_groups(FRR_10)
    assert (b.name, b.buckets, b.idle_timer, b.unbalanced_timer) == ("B", 32, 100, 500)
    assert b.nexthops == (("2001:db8::1", "eth0"), ("192.0.2.1", None), (None, "eth2"), ("198.51.100.9", "eth3"))
    assert bk == ConfiguredGroup("BK", (("203.0.113.1", "eth9"),))
    assert parse_nexthop_groups("") == () and parse_nexthop_groups("router bgp 1\n nexthop x\n") == ()


@pytest.mark.parametrize("text, why", [
    ("nexthop-group A\n resilient buckets x idle-timer 1 unbalanced-timer 1\n", "line 2: a resilient line needs"),
    ("nexthop-group A\n resilient buckets 8\n", "line 2: a resilient line needs buckets, idle-timer, unbalanced"),
    ("nexthop-group A\nexit\nnexthop-group A\n", "line 3: nexthop-group 'A' twice"),
    ("nexthop-group A B\n", "line 1: a nexthop-group line names one group"),
    ("nexthop-group A\n resilient buckets -1 idle-timer 1 unbalanced-timer 1\n", "negative resilient setting"),
])
def test_bad_input_is_one_clear_line(text, why):
    with pytest.raises(ParseError) as err:
        parse_nexthop_groups(text)
    msg = str(err.value)
    assert msg.startswith("frr-running-config: ") and why in msg and "\n" not in msg


def _spine_group(resilient: bool) -> tuple[ConfiguredGroup, ...]:
    """spine01's next hops to the anycast prefix, as FRR would be configured for them."""
    snap = SimFabric(SimConfig(resilient=resilient)).snapshot(1_000)
    st = snap.devices["spine01"]
    route = next(r for r in st.routes if r.dst == "192.0.2.53/32")
    if route.nhid is not None:
        gw = {o.id: o.gateway for o in st.nexthops.objects}
        group = next(g for g in st.nexthops.groups if g.id == route.nhid)
        addrs = [gw[m.id] for m in group.members]
    else:
        addrs = [n.gateway for n in route.nexthops]
    assert len(addrs) == 4
    return (ConfiguredGroup("ANY", tuple((a, None) for a in addrs), 32, 120, 0),)


def test_resilient_configured_and_plain_in_the_kernel_is_a_finding():
    snap = SimFabric(SimConfig()).snapshot(1_000)  # spines: plain multipath routes
    rep = evaluate(snap, frr_config={"spine01": _spine_group(False)})
    (f,) = [f for f in rep.findings if f.rule == "resilient-not-in-effect"]
    assert f.subject == "spine01 ANY" and f.severity.label == "warning"
    assert "kernel forwards over its next hops with route 192.0.2.53/32 (plain multipath)" in f.summary
    assert f.evidence[0].startswith("FRR: nexthop-group ANY: resilient buckets 32 idle-timer 120 unbalanced-timer 0")


def test_resilient_in_the_kernel_too_is_fine_and_a_plain_config_is_not_judged():
    snap = SimFabric(SimConfig(resilient=True)).snapshot(1_000)  # spines: resilient nexthop groups
    assert not [f for f in evaluate(snap, frr_config={"spine01": _spine_group(True)}).findings
                if f.rule == "resilient-not-in-effect"]
    plain = SimFabric(SimConfig()).snapshot(1_000)
    cfg = tuple(ConfiguredGroup(g.name, g.nexthops) for g in _spine_group(False))
    assert not [f for f in evaluate(plain, frr_config={"spine01": cfg}).findings if f.rule == "resilient-not-in-effect"]
    # a device that is not in the snapshot, or a group over next hops the kernel has no group for: not judged
    other = (ConfiguredGroup("X", (("198.51.100.1", None), ("198.51.100.2", None)), 8, 1, 1),)
    assert not [f for f in evaluate(plain, frr_config={"nosuch": other, "spine01": other}).findings
                if f.rule == "resilient-not-in-effect"]
