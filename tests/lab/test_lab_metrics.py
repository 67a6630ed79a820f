"""On the real BGP lab (FRR in namespaces, collected over SSH): what a Prometheus scrape says of it — the next hops
the kernels forward with against the paths BGP uses (FRR's RIB read with vtysh), before and after a leaf fails,
and the poller's real poll times."""

from __future__ import annotations

import asyncio

import pytest
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.registry import CollectorRegistry

from anycast_tui.collect.inventory import load_inventory
from anycast_tui.lab.labctl import Lab
from anycast_tui.lab.nslab import ANYCAST
from anycast_tui.metrics import FabricCollector
from anycast_tui.session import LiveSession

pytestmark = pytest.mark.kernel
ANY = f"{ANYCAST}/32"


def _scrape(collector: FabricCollector) -> dict[str, dict[tuple, float]]:
    reg = CollectorRegistry(auto_describe=False)
    reg.register(collector)
    out: dict[str, dict[tuple, float]] = {}
    for fam in text_string_to_metric_families(generate_latest(reg).decode()):
        for s in fam.samples:
            out.setdefault(s.name, {})[tuple(sorted(s.labels.items()))] = s.value
    return out


def _per_spine(m: dict, name: str, spines: list[str]) -> dict[str, float]:
    return {s: m[name][(("device", s), ("prefix", ANY))] for s in spines}


def test_scrape_of_the_bgp_lab_next_hops_against_bgp(bgp_lab: Lab):
    spines = [n.name for n in bgp_lab.topo.role("spine")]
    inv = load_inventory(bgp_lab.cfg.inventory)

    async def run() -> tuple[dict, dict]:
        session = LiveSession(inv, interval_s=60.0)
        collector = FabricCollector(session.timeline, poller=session.poller)
        try:
            await session.poll_once()
            before = _scrape(collector)
            bgp_lab.fail("leaf03")
            await asyncio.to_thread(bgp_lab.wait_converged)
            await session.poll_once()
            return before, _scrape(collector)
        finally:
            await session.stop()

    try:
        before, after = asyncio.run(run())
    finally:
        bgp_lab.restore("leaf03")
        bgp_lab.wait_converged()
    # 4 leaves announce the address: each spine's kernel hashes over 4, and BGP uses 4 paths
    assert _per_spine(before, "anycast_nexthops", spines) == dict.fromkeys(spines, 4.0)
    assert _per_spine(before, "anycast_nexthops_expected", spines) == dict.fromkeys(spines, 4.0)
    assert _per_spine(before, "anycast_rib_fib_mismatch", spines) == dict.fromkeys(spines, 0.0)
    # leaf03 down: BGP withdraws it, the kernels follow
    assert _per_spine(after, "anycast_nexthops", spines) == dict.fromkeys(spines, 3.0)
    assert _per_spine(after, "anycast_nexthops_expected", spines) == dict.fromkeys(spines, 3.0)
    for name in inv.names:
        assert before["anycast_polls_total"][(("device", name),)] == 1
        assert after["anycast_polls_total"][(("device", name),)] == 2
        assert 0 < before["anycast_poll_duration_seconds"][(("device", name),)] < 60
        assert before["anycast_device_up"][(("device", name),)] == 1
