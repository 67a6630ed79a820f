"""FRR's running configuration on the real BGP lab: a nexthop-group configured in a real FRR (pbrd, the daemon
that carries nexthop-group configuration, started beside the lab's zebra and bgpd on spine01) is read back with
the fixed command (``vtysh -c 'show running-config'``) and parsed; compared with spine01's kernel (polled over
SSH), a group over its four leaves configured resilient is the ``resilient-not-in-effect`` finding — the kernel
forwards over those leaves with a plain multipath route — and a plain one is not.

The lab's FRR is 8.4, which has no ``resilient`` command (FRR 8.5 added it): the line is added to the real text as
FRR 8.5+ writes it (lib/nexthop_group.c, ``nexthop_group_write``).  Root; run alone, under ``flock
/tmp/anycast-ns.lock``."""

from __future__ import annotations

import shutil
import subprocess
import time

import pytest

from anycast_tui.collect.commands import FRR_RUNNING
from anycast_tui.lab import frr
from anycast_tui.lab.labctl import Lab
from anycast_tui.model.health import evaluate
from anycast_tui.parse.frr_running import parse_nexthop_groups

from .healthlab import poll_snapshot

pytestmark = pytest.mark.kernel


def _pbrd(lab: Lab, name: str) -> None:
    node = lab.topo.node(name)
    d = frr.node_dir(lab.frr_dir, node)
    conf = d / "pbrd.conf"
    conf.write_text(f"hostname {name}\n!\n")
    shutil.chown(conf, "frr", "frr")
    subprocess.run(["ip", "netns", "exec", node.ns, str(frr.FRR_DIR / "pbrd"), "-d", "-f", str(conf),
                    "-i", str(d / "pbrd.pid"), "-z", str(d / "zserv.api"), "--vty_socket", str(d), "-u", "frr",
                    "-g", "frr", "-P", "0", "--log", f"file:{d / 'pbrd.log'}"], check=True, timeout=30)
    for _ in range(100):  # a bound, not a timing assertion
        if (d / "pbrd.vty").exists():
            return
        time.sleep(0.1)
    raise RuntimeError("pbrd did not start")


def test_resilient_nexthop_group_configured_but_plain_in_the_kernel(bgp_lab: Lab):
    lab = bgp_lab
    spine = lab.topo.node("spine01")
    leaves = sorted((ln.b, ln.b_ip) for ln in lab.topo.links if ln.a == "spine01" and ln.b.startswith("leaf"))
    assert len(leaves) == 4
    _pbrd(lab, "spine01")
    frr.vtysh(lab.frr_dir, spine, "configure terminal", "nexthop-group ANYCAST",
              *(f"nexthop {ip} {leaf}" for leaf, ip in leaves), "exit", "nexthop-group SPARE",
              f"nexthop {leaves[0][1]} {leaves[0][0]}")
    # the fixed command, as the collector runs it (here in the namespace, against this lab's vty sockets)
    argv = list(FRR_RUNNING.argv)
    assert argv[:3] == ["vtysh", "-c", "show running-config"]
    text = frr.vtysh(lab.frr_dir, spine, "show running-config")
    groups = {g.name: g for g in parse_nexthop_groups(text)}
    assert set(groups) == {"ANYCAST", "SPARE"}, text
    assert groups["ANYCAST"].nexthops == tuple((ip, leaf) for leaf, ip in leaves)
    assert not groups["ANYCAST"].resilient

    snap = poll_snapshot(lab)
    plain = evaluate(snap, frr_config={"spine01": tuple(groups.values())})
    assert not [f for f in plain.findings if f.rule == "resilient-not-in-effect"]

    # as FRR 8.5+ writes a resilient group: the line right under the group's name
    resilient_text = text.replace("nexthop-group ANYCAST\n",
                                  "nexthop-group ANYCAST\n resilient buckets 64 idle-timer 120 unbalanced-timer 0\n")
    groups = {g.name: g for g in parse_nexthop_groups(resilient_text)}
    assert (groups["ANYCAST"].buckets, groups["ANYCAST"].idle_timer, groups["ANYCAST"].unbalanced_timer) == (64, 120, 0)
    rep = evaluate(snap, frr_config={"spine01": tuple(groups.values())})
    (f,) = [f for f in rep.findings if f.rule == "resilient-not-in-effect"]
    assert f.subject == "spine01 ANYCAST"
    assert "configured resilient (buckets 64)" in f.summary and "route 192.0.2.53/32 (plain multipath)" in f.summary
    # its default route goes over the same four leaves: listed too, after the anycast prefix's
    assert f.evidence[1:] == ("kernel: route 192.0.2.53/32 (plain multipath)", "kernel: route 0.0.0.0/0 (plain multipath)")
