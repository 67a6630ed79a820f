"""End to end on the real lab: SSH collector → engine prediction == the kernels' answers == real TCP resets.

One BGP lab (FRR) and one resilient static lab, each shared by its tests.
"""

from __future__ import annotations

import asyncio
import json
import subprocess

import numpy as np
import pytest

from anycast_tui.collect.inventory import load_inventory
from anycast_tui.collect.poller import Poller
from anycast_tui.lab.labctl import Lab
from anycast_tui.lab.nslab import ANYCAST
from anycast_tui.model import events
from anycast_tui.model.flowarray import FlowArray
from anycast_tui.model.impact import impact
from anycast_tui.model.types import EventKind, FabricSnapshot, HealthStatus

from .labwalk import final_servers, held_traffic, lab_flows

pytestmark = pytest.mark.kernel
N_FLOWS = 2000
ANY = f"{ANYCAST}/32"


def _anycast_width(snap: FabricSnapshot, device: str) -> int:
    st = snap.devices[device]
    for r in st.routes:
        if r.dst == ANY and r.table == "main":
            if r.nhid is not None:
                g = st.group(r.nhid)
                return len(g.members) if g else 1
            return len(r.nexthops)
    return 0


async def _wait_polls(p: Poller, names: list[str], at_least: dict[str, int]) -> None:
    while any(p.polls(n) < at_least[n] for n in names):
        await asyncio.sleep(0.02)


async def _fail_and_compare(lab: Lab, target: str, action: str = "fail") -> dict:
    """``lab.fail`` (or ``drain``) ``target`` under a running 1 s poller; returns what the test asserts on."""
    inv = load_inventory(lab.cfg.inventory)
    names = list(inv.names)
    spines = [s.name for s in lab.topo.role("spine")]
    flows = lab_flows(N_FLOWS)
    async with Poller(inv, interval_s=1.0) as p:
        await _wait_polls(p, names, {n: 1 for n in names})
        before = p.snapshot()
        kernel_before = final_servers(lab.topo, flows)
        await asyncio.to_thread(lambda: (getattr(lab, action)(target), lab.wait_converged()))
        start = {n: p.polls(n) for n in names}
        # the event must show in the collected state within 2 polls of each spine
        seen_after: dict[str, int] = {}
        while len(seen_after) < len(spines) and all(p.polls(s) <= start[s] + 3 for s in spines):
            for e in events.diff(before, p.snapshot()):
                if e.device in spines and e.device not in seen_after and (
                        e.prefix == ANY or e.kind in (EventKind.GROUP_CHANGED, EventKind.BUCKETS_CHANGED)):
                    seen_after[e.device] = p.polls(e.device) - start[e.device]
            await asyncio.sleep(0.02)
        await _wait_polls(p, names, {n: start[n] + 2 for n in names})  # every device collected after the event
        after = p.snapshot()
    kernel_after = final_servers(lab.topo, flows)
    im = impact(before, after, FlowArray.from_flows(flows), "client")
    labels = np.array(im.labels)
    return {"before": before, "after": after, "seen_after_polls": seen_after, "impact": im,
            "engine_before": list(labels[im.before_end]), "engine_after": list(labels[im.after_end]),
            "kernel_before": kernel_before, "kernel_after": kernel_after}


def _assert_agreement(r: dict, spines: list[str]) -> np.ndarray:
    assert set(r["seen_after_polls"]) == set(spines), "the event never showed on some spine"
    assert all(0 <= n <= 2 for n in r["seen_after_polls"].values()), r["seen_after_polls"]
    kb, ka = np.array(r["kernel_before"]), np.array(r["kernel_after"])
    assert len(kb) >= 2000
    assert list(kb) == r["engine_before"]
    assert list(ka) == r["engine_after"]
    kernel_moved = kb != ka
    assert kernel_moved.any() and not kernel_moved.all()
    assert np.array_equal(r["impact"].moved, kernel_moved)  # 100 % agreement
    return kernel_moved


def test_collector_sees_every_device_and_4way_ecmp(bgp_lab: Lab):
    inv = load_inventory(bgp_lab.cfg.inventory)
    assert set(inv.names) == set(bgp_lab.topo.nodes)
    hashes = inv.extra["lab_hash"]

    async def poll() -> FabricSnapshot:
        p = Poller(inv)
        try:
            return await p.poll_once()
        finally:
            await p.stop()

    snap = asyncio.run(poll())
    for name, st in snap.devices.items():
        assert st.health.status is HealthStatus.OK, (name, st.health.error)
        assert (st.hash.policy, st.hash.seed) == (1, hashes[name]["seed"])
    for s in bgp_lab.topo.role("spine"):
        assert _anycast_width(snap, s.name) == 4
        r = next(r for r in snap.devices[s.name].routes if r.dst == ANY and r.table == "main")
        assert r.protocol == "bgp"


def test_fail_leaf03_prediction_equals_kernel_bgp(bgp_lab: Lab):
    try:
        r = asyncio.run(_fail_and_compare(bgp_lab, "leaf03"))
        moved = _assert_agreement(r, ["spine01", "spine02"])
        assert all(_anycast_width(r["after"], s) == 3 for s in ("spine01", "spine02"))
        # hash-threshold: more than server03's own flows move
        was03 = np.array(r["kernel_before"]) == "server03"
        assert (moved & ~was03).any()
    finally:
        bgp_lab.restore("leaf03")
        bgp_lab.wait_converged()


def test_drain_server02_prediction_equals_kernel_bgp(bgp_lab: Lab):
    try:
        r = asyncio.run(_fail_and_compare(bgp_lab, "server02", "drain"))
        _assert_agreement(r, ["spine01", "spine02"])
        assert all(_anycast_width(r["after"], s) == 3 for s in ("spine01", "spine02"))
        assert "server02" not in r["kernel_after"]
    finally:
        bgp_lab.restore("server02")
        bgp_lab.wait_converged()


def test_fail_leaf03_prediction_equals_kernel_resilient(resilient_lab: Lab):
    r = asyncio.run(_fail_and_compare(resilient_lab, "leaf03"))
    moved = _assert_agreement(r, ["spine01", "spine02"])
    for s in ("spine01", "spine02"):
        st = r["after"].devices[s]
        route = next(x for x in st.routes if x.dst == ANY and x.table == "main")
        g = st.group(route.nhid)
        assert g is not None and g.type == "resilient" and len(g.members) == 3 and g.bucket_table
    # resilient: only the flows that were on server03 move
    assert np.array_equal(moved, np.array(r["kernel_before"]) == "server03")


def test_traffic_tcp_resets_are_the_predicted_ones(bgp_lab: Lab):
    assert bgp_lab.cfg.nohash_error is None, f"client tc program missing: {bgp_lab.cfg.nohash_error}"
    bgp_lab.start_services()
    flows = lab_flows(400, first_port=40000)
    inv = load_inventory(bgp_lab.cfg.inventory)

    async def snap() -> FabricSnapshot:
        p = Poller(inv)
        try:
            return await p.poll_once()
        finally:
            await p.stop()

    before = asyncio.run(snap())
    try:
        with held_traffic(bgp_lab, flows) as report:
            bgp_lab.fail("leaf03")
            bgp_lab.wait_converged()
            after = asyncio.run(snap())
    finally:
        bgp_lab.restore("leaf03")
        bgp_lab.wait_converged()
    im = impact(before, after, FlowArray.from_flows(flows), "client")
    labels = np.array(im.labels)
    tcp = np.array([f.proto == 6 for f in flows])
    reset = np.array([x["error"] is not None for x in report])
    assert not reset[~tcp].any()  # UDP never dies
    assert [x["answers"][0] for x in report] == list(labels[im.before_end])  # real answers == engine
    assert im.tcp_reset.any() and (tcp & ~im.moved).any()
    assert np.array_equal(reset, im.tcp_reset)  # exactly the predicted TCP connections were reset
    survivors = tcp & ~reset
    assert all(report[i]["answers"][1] == report[i]["answers"][0] for i in np.flatnonzero(survivors))
    udp_moved = ~tcp & im.moved
    assert udp_moved.any()
    assert [report[i]["answers"][1] for i in np.flatnonzero(~tcp)] == list(labels[im.after_end][~tcp])


def test_cli_status_and_traffic(bgp_lab: Lab):
    import os
    import sys
    from pathlib import Path

    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "anycast_tui.commands.lab", "--prefix", bgp_lab.cfg.prefix, *args],
                              capture_output=True, text=True, env=env, cwd="/", timeout=120)

    st = cli("status", "--json")
    assert st.returncode == 0, st.stderr
    status = json.loads(st.stdout)
    assert status["ssh_daemon"] and status["client_tc_nohash"] == "attached"
    assert {d: v["bgp"] for d, v in status["devices"].items() if "bgp" in v} == {
        **{f"spine0{i}": "4/4" for i in (1, 2)}, **{f"leaf0{i}": "3/3" for i in range(1, 5)},
        **{f"server0{i}": "1/1" for i in range(1, 5)}}
    assert all(status["devices"][s]["anycast_paths"] == 4 for s in ("spine01", "spine02"))
    tr = cli("traffic", "--tcp", "8", "--udp", "8", "--rounds", "2", "--json")
    assert tr.returncode == 0, tr.stderr
    flows = json.loads(tr.stdout)["flows"]
    assert len(flows) == 16 and all(f["error"] is None for f in flows)
    assert all(len(set(f["answers"])) == 1 and f["answers"][0].startswith("server") for f in flows)
    bad = cli("traffic", "--tcp", "5000")
    assert bad.returncode == 2 and bad.stderr.count("\n") == 1
