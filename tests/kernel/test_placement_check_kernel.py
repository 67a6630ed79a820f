"""Placement checked against the fabric (``model.placement_check``), on a real kernel router.

A sampled packet carries the ifIndex it left on.  Here the kernel itself answers for each flow (``ip route get
… iif rin ipproto P sport S dport D``: the forwarding path) and the answer's device becomes the sample's
output ifIndex — the ifIndex read from the kernel (``ip -j link``), as an exporter reports it.  Checked
against the router's collected state (its ``ip -j`` outputs parsed as the poll parses them), every sample
must agree, and the device is called exact; samples whose output port is made wrong are listed as
disagreements, with the kernel's answer as the prediction.
"""

from __future__ import annotations

import ipaddress
import json
import subprocess

import numpy as np
import pytest

from anycast_tui.collect.commands import HASH_SYSCTLS
from anycast_tui.model.flowarray import FlowArray
from anycast_tui.model.placement_check import SUSPECT_MIN, PlacementCheck
from anycast_tui.model.samples import ExportKind, FlowSample
from anycast_tui.model.types import Device, Health, HealthStatus, Role
from anycast_tui.parse.device import build_device_state
from kernelrouter import ANYCAST4, ANYCAST6, KernelRouter, kernel_route_get_batch

pytestmark = pytest.mark.kernel

SEED = 0x5EED1234
N = 2000


def _state(kr: KernelRouter):
    outputs = {"routes4": kr.ip("-j", "-4", "route", "show", "table", "all"),
               "routes6": kr.ip("-j", "-6", "route", "show", "table", "all"),
               "addrs": kr.ip("-j", "addr", "show"), "nexthops": kr.ip("-j", "nexthop", "show"),
               "buckets": kr.ip("-j", "nexthop", "bucket", "show"),
               "sysctl": subprocess.run(["ip", "netns", "exec", kr.router, "sysctl", "-n", *HASH_SYSCTLS],
                                        capture_output=True, text=True, check=True).stdout}
    return build_device_state(Device("r", Role.SPINE), outputs, collected_at_ms=0,
                              health=Health(HealthStatus.OK))


def _samples(kr: KernelRouter, flows: FlowArray) -> list[FlowSample]:
    """One sample per flow, its output port the kernel's own answer."""
    ifindex = {lk["ifname"]: lk["ifindex"] for lk in json.loads(kr.ip("-j", "link", "show"))}
    gws = kernel_route_get_batch(kr.router, flows, kr.iif)
    dev_of_gw = {}
    for rt in json.loads(kr.ip("-j", "-4", "route", "show", ANYCAST4)) + \
            json.loads(kr.ip("-j", "-6", "route", "show", ANYCAST6)):
        for nh in rt.get("nexthops", []):
            dev_of_gw[str(ipaddress.ip_address(nh["gateway"]))] = nh["dev"]
    out = []
    for i in range(len(flows)):
        fam = int(flows.family[i])
        w = 4 if fam == 4 else 16
        gw = gws[i]
        assert gw is not None, "the kernel must answer every flow"
        out.append(FlowSample("198.18.0.1", ExportKind.SFLOW, 1, 1, ifindex[kr.iif],
                              ifindex[dev_of_gw[str(ipaddress.ip_address(gw))]], fam, int(flows.proto[i]),
                              bytes(flows.src[i, :w]), bytes(flows.dst[i, :w]), int(flows.sport[i]),
                              int(flows.dport[i]), int(flows.flowlabel[i]) if fam == 6 else 0))
    return out


def test_kernel_answers_agree_with_the_model_and_wrong_ports_are_listed(netns):
    kr = KernelRouter.build(netns, 4, seed=SEED, policy=1)
    kr.route_multipath([0, 1, 2, 3])
    kr.route_multipath([0, 1, 2, 3], family=6)
    rng = np.random.default_rng(7)
    v4 = FlowArray.random(N // 2, rng=rng, dst=ANYCAST4, protos=(6, 17))
    v6 = FlowArray.random(N // 2, rng=rng, family=6, dst=ANYCAST6, protos=(6, 17))
    samples = _samples(kr, v4) + _samples(kr, v6)
    state = _state(kr)
    assert (state.hash.policy, state.hash.seed) == (1, SEED)
    check = PlacementCheck()
    a = check.add(state, samples)
    assert (a.compared, a.agreed) == (N, N)
    assert a.exact and a.text == f"= 100 % of {N:,}" and not a.suspect

    # the same flows with the wrong output port: every one is a listed disagreement
    ifindex = {i.name: i.ifindex for i in state.interfaces}
    wrong = [s for s in samples[:SUSPECT_MIN * 2]]
    bad = [FlowSample(s.exporter, s.kind, s.source_id, 1, s.input_if,
                      ifindex["nh0"] if s.output_if != ifindex["nh0"] else ifindex["nh1"], s.family, s.proto,
                      s.src, s.dst, s.sport, s.dport, s.flowlabel) for s in wrong]
    b = check.add(state, bad)
    assert b.compared == N + len(bad) and b.agreed == N
    assert b.suspect  # called exact, disagreeing beyond noise
    names = {v: k for k, v in ifindex.items()}
    for d, s in zip(b.disagreements[-len(bad):], wrong):
        assert d.predicted == names[s.output_if]  # the kernel's answer is what the model predicted
        assert d.observed != d.predicted
