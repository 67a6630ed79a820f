"""Server shares measured on sampled traffic, on the real static lab (real kernels in namespaces, polled over real
SSH): a sampled window skewed on purpose — many flows whose 5-tuples the real kernels send to one server, each
with its own packet count — gives each server the share of the packets the kernels deliver to it, computed here
from ``ip route get`` hop by hop (``labwalk.final_servers``), not from the model; the hash space stays fair
beside it, and the imbalance finding says it is the traffic's doing, measured on how many sampled flows at
what packet rate.  Root; run alone, under ``flock /tmp/anycast-ns.lock``."""

from __future__ import annotations

import ipaddress

import numpy as np
import pytest

from anycast_tui.lab.labctl import Lab
from anycast_tui.lab.nslab import ANYCAST
from anycast_tui.model.health import evaluate
from anycast_tui.model.sampled import SampledWindow
from anycast_tui.model.samples import ExportKind, FlowSample
from anycast_tui.model.types import Flow, Role

from .healthlab import poll_snapshot
from .labwalk import PROTO, _batch, _dev, final_servers

pytestmark = pytest.mark.kernel
ANY = f"{ANYCAST}/32"
NOW = 1_764_000_000.0
WINDOW_S = 300.0


def test_shares_of_skewed_sampled_traffic_are_the_kernels(static_lab: Lab):
    lab = static_lab
    candidates = [Flow(6 if i % 2 else 17, f"203.0.113.{10 + i % 200}", 30000 + i, ANYCAST, 53) for i in range(800)]
    servers = final_servers(lab.topo, candidates)  # where the real kernels deliver each flow
    first = sorted(set(servers))[0]
    # the skew: every candidate the kernels send to the first server, 40 of each other server's
    keep, per = [], {}
    for f, s in zip(candidates, servers):
        if s == first or per.get(s, 0) < 40:
            keep.append((f, s))
            per[s] = per.get(s, 0) + 1
    assert per[first] > 150 and len(per) == 4, per
    # the spine each flow reaches from the client (the kernel's answer): where it is sampled, so where it enters
    spines = [_dev(a) for a in _batch(lab.topo.node("client").ns, [
        f"route get {f.dst} from {f.src} ipproto {PROTO[f.proto]} sport {f.sport} dport {f.dport}" for f, _ in keep])]
    rng = np.random.default_rng(5)
    sampled = rng.integers(1, 30, size=len(keep))  # sampled packets per flow, at 1 in 100
    window = SampledWindow([ANY], window_s=WINDOW_S)
    for (f, _), spine, n in zip(keep, spines, sampled):
        window.add(str(spine), Role.SPINE, [FlowSample(
            "198.18.0.1", ExportKind.SFLOW, 1, 100, None, None, 4, f.proto, ipaddress.ip_address(f.src).packed,
            ipaddress.ip_address(f.dst).packed, f.sport, f.dport, packets=int(n), octets=int(n) * 100,
            received=NOW)])
    snap = poll_snapshot(lab)
    rep = evaluate(snap, traffic_of=lambda p: window.flow_set(p, now=NOW + 1))

    # the independent answer: packets per server as the kernels deliver the flows
    total = float(sampled.sum())
    want = {s: float(sum(n for (_, srv), n in zip(keep, sampled) if srv == s)) / total for s in per}
    shares = {s.server: s for s in rep.shares if s.prefix == ANY}
    assert set(shares) == set(want)
    for name, s in shares.items():
        assert s.sampled and s.flows == per[name]
        assert abs(s.share - want[name]) < 1e-9, (name, s.share, want[name])
        assert abs(s.pps - want[name] * total * 100 / WINDOW_S) < 1e-6
        assert abs(s.hash_share - 0.25) < 0.03  # the hash space is fair: 4 leaves, one server each
        assert s.basis.startswith(f"sampled traffic (measured on {len(keep):,} sampled flows, ≈ ")
        assert s.basis.endswith(" pkt/s at 1:100)")
    assert rep.imbalance(ANY) == max(want.values()) / 0.25
    (imb,) = [f for f in rep.findings if f.rule == "imbalance"]
    assert f"{first} gets {round(100 * want[first], 1):g} % of the sampled traffic" in imb.summary
    assert f"measured on {len(keep):,} sampled flows, ≈ " in imb.summary
    assert "by traffic: the hash space is fair" in imb.summary
    assert [f.rule for f in rep.findings] == ["imbalance"]  # the lab is clean otherwise
