"""Real FRR (zebra + staticd) in a namespace: its ``show ip route`` (JSON and text) parse to the kernel's FIB."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest

from anycast_tui.lab import frr as labfrr
from anycast_tui.lab import netns as nsx
from anycast_tui.parse.frr import parse_frr_route, parse_frr_route_json
from anycast_tui.parse.route import parse_ip_route_json

pytestmark = pytest.mark.kernel

STATIC = """hostname r
ip route 192.0.2.53/32 198.18.1.2
ip route 192.0.2.53/32 198.18.2.2
ip route 192.0.2.53/32 198.18.3.2
ip route 192.0.2.60/32 blackhole
ip route 198.51.100.0/24 192.0.2.53
!
"""
PREFIXES = ("192.0.2.53/32", "192.0.2.60/32", "198.51.100.0/24")


def _vtysh(rundir: Path, command: str) -> str:
    proc = subprocess.run(["vtysh", "--vty_socket", str(rundir), "-c", command], capture_output=True, text=True,
                          timeout=30)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


@pytest.fixture
def frr_router(netns):
    why = labfrr.available()
    if why is not None:
        pytest.skip(why)
    r, peer = netns.add("r"), netns.add("p")
    for i in (1, 2, 3):
        nsx.ip(r, "link", "add", f"v{i}", "type", "veth", "peer", "name", f"p{i}", "netns", peer)
        nsx.ip(peer, "link", "set", f"p{i}", "up")
        nsx.ip(peer, "addr", "add", f"198.18.{i}.2/24", "dev", f"p{i}")
        nsx.ip(r, "addr", "add", f"198.18.{i}.1/24", "dev", f"v{i}")
        nsx.ip(r, "link", "set", f"v{i}", "up")
    rundir = Path("/run/anycast-tui/frr") / r
    rundir.mkdir(parents=True, exist_ok=True)
    (rundir / "zebra.conf").write_text("hostname r\n!\n")
    (rundir / "staticd.conf").write_text(STATIC)
    for p in (rundir, rundir / "zebra.conf", rundir / "staticd.conf"):
        shutil.chown(p, "frr", "frr")
    for p in (rundir.parent, rundir.parent.parent):
        os.chmod(p, 0o711)
    try:
        for daemon in ("zebra", "staticd"):
            subprocess.run(["ip", "netns", "exec", r, f"/usr/lib/frr/{daemon}", "-d", "-f",
                            str(rundir / f"{daemon}.conf"), "-i", str(rundir / f"{daemon}.pid"), "-z",
                            str(rundir / "zserv.api"), "--vty_socket", str(rundir), "-u", "frr", "-g", "frr",
                            "-P", "0", "--log", f"file:{rundir / daemon}.log"], check=True, timeout=30,
                           capture_output=True)
        # Wait (generously; no timing is asserted) until zebra has installed every static route in the kernel.
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            got = {rt.dst for rt in parse_ip_route_json(nsx.ip(r, "-j", "route", "show"))}
            if set(PREFIXES) <= got:
                break
            time.sleep(0.1)
        yield r, rundir
    finally:
        for pidfile in rundir.glob("*.pid"):
            try:
                os.kill(int(pidfile.read_text().split()[0]), signal.SIGTERM)
            except (OSError, ValueError, IndexError):
                pass
        shutil.rmtree(rundir, ignore_errors=True)


def _fib(routes):
    return {r.dst: (r.type, sorted((nh.gateway, nh.dev, nh.weight) for nh in r.nexthops)) for r in routes
            if r.dst in PREFIXES}


def test_frr_json_and_text_match_the_kernel_fib(frr_router):
    ns, rundir = frr_router
    kernel = _fib(parse_ip_route_json(nsx.ip(ns, "-j", "route", "show")))
    assert set(kernel) == set(PREFIXES)
    from_json = parse_frr_route_json(_vtysh(rundir, "show ip route json"))
    from_text = parse_frr_route(_vtysh(rundir, "show ip route"))
    assert _fib(from_json) == kernel
    assert _fib(from_text) == kernel
    rec = next(r for r in from_json if r.dst == "198.51.100.0/24")
    assert all(("resolves", "192.0.2.53") in nh.extra for nh in rec.nexthops) and len(rec.nexthops) == 3
    ecmp = next(r for r in from_json if r.dst == "192.0.2.53/32")
    assert (ecmp.protocol, ecmp.table, dict(ecmp.extra)["distance"]) == ("static", "main", "1")
