"""The sampled-flow window (``model.sampled``): what it keeps, where a flow entered, what it counts, its bounds."""

from __future__ import annotations

import ipaddress

import numpy as np
import pytest

from anycast_tui.model.incident_impact import (PhaseImpact, ImpactCounts, SampledCounts, phase_from_json,
                                                phase_json, sampled_text)
from anycast_tui.model.sampled import SampledWindow
from anycast_tui.model.samples import ExportKind, FlowSample
from anycast_tui.model.types import Role

ANY = "192.0.2.53"


def sample(src="203.0.113.7", dst=ANY, sport=40000, dport=53, proto=17, rate=400, at=100.0, in_if=3, octets=100):
    s, d = ipaddress.ip_address(src), ipaddress.ip_address(dst)
    return FlowSample("198.18.0.1", ExportKind.SFLOW, 1, rate, in_if, 7, s.version, proto, s.packed, d.packed,
                      sport, dport, 0, 0, 1, octets, received=at)


def test_only_flows_to_anycast_prefixes_are_kept():
    w = SampledWindow([f"{ANY}/32", "2001:db8:53::/64"])
    assert w.add("spine01", Role.SPINE, [sample(), sample(dst="192.0.2.54"), sample(src="2001:db8:cafe::1",
                                                                                  dst="2001:db8:53::99")]) == 2
    assert (len(w), w.samples, w.ignored) == (2, 2, 1)
    assert w.flow_set("2001:db8:53::/64", now=100.0).flows.family.tolist() == [6]


def test_a_flow_enters_where_it_was_sampled_closest_to_the_clients_and_counts_there_once():
    w = SampledWindow([f"{ANY}/32"])
    w.add("leaf01", Role.LEAF, [sample(at=100.0)])  # first seen on a leaf
    w.add("spine02", Role.SPINE, [sample(at=100.5), sample(at=101.0)])  # then on the spine: it entered there
    w.add("leaf01", Role.LEAF, [sample(at=101.2)])  # the leaf's copies of the same packets are not counted again
    fs = w.flow_set(f"{ANY}/32", now=102.0)
    assert len(fs) == 1 and fs.entry_names[fs.entry[0]] == "spine02"
    assert fs.packets.tolist() == [2 * 400] and fs.octets.tolist() == [2 * 100 * 400]
    assert fs.first_seen.tolist() == [100.0] and fs.last_seen.tolist() == [101.2]
    assert fs.rate_text == "1:400" and fs.pps() == pytest.approx(800 / 300)


def test_window_expiry_and_seen_by():
    w = SampledWindow([f"{ANY}/32"], window_s=60)
    w.add("spine01", Role.SPINE, [sample(sport=1, at=0.0), sample(sport=2, at=50.0), sample(sport=3, at=90.0)])
    assert len(w.flow_set(f"{ANY}/32", now=100.0)) == 2  # sport 1 last seen 100 s ago: outside the window
    alive_before = w.flow_set(f"{ANY}/32", now=60.0, seen_by=60.0)
    assert sorted(alive_before.flows.sport.tolist()) == [1, 2]  # sport 3 first seen after 60 s
    assert w.expire(100.0) == 1 and len(w) == 2 and w.expired == 1


def test_beyond_max_flows_the_oldest_go_and_are_counted():
    w = SampledWindow([f"{ANY}/32"], max_flows=100)
    w.add("spine01", Role.SPINE, [sample(sport=p, at=float(p)) for p in range(1000, 1250)])
    assert len(w) == 100 and w.evicted == 150
    assert sorted(w.flow_set(f"{ANY}/32", now=1250.0).flows.sport.tolist()) == list(range(1150, 1250))


def test_rates_of_several_devices():
    w = SampledWindow([f"{ANY}/32"])
    w.add("spine01", Role.SPINE, [sample(sport=1, rate=100), sample(sport=2, rate=400), sample(sport=3, rate=0)])
    assert w.flow_set(f"{ANY}/32", now=100.0).rate_text == "1:100–1:400"


def test_bad_window_settings_are_refused():
    with pytest.raises(ValueError):
        SampledWindow([f"{ANY}/32"], window_s=0)


def test_sampled_counts_survive_the_recording_boundary_and_read_as_measured():
    sc = SampledCounts(1204, 580, 300, 280, 250_000.0, 96_000.0, "1:400", 300.0)
    p = PhaseImpact(ImpactCounts(10_000, 10, 5, 5, 0), None, (), ("s1",), (), (), "", False,
                    "10,000 synthetic flows", sc)
    back = phase_from_json(phase_json(p))
    assert back.sampled == sc
    assert sampled_text(p) == ("sampled: 580 of 1,204 flows moved (≈ 96 k pkt/s at 1:400), 300 TCP reset, "
                               "280 UDP, measured on sampled traffic")
    old = phase_json(p)
    del old["sampled"]  # recordings made before sampled traffic existed
    assert phase_from_json(old).sampled is None
    assert np.isfinite(sc.pps)


def test_a_device_exporting_sflow_and_ipfix_counts_its_packets_once():
    from dataclasses import replace

    w = SampledWindow([f"{ANY}/32"])
    s = sample(rate=1, at=100.0)
    w.add("spine01", Role.SPINE, [s, s])  # two sampled packets (sFlow)
    w.add("spine01", Role.SPINE, [replace(s, kind=ExportKind.IPFIX, packets=2, octets=200)])  # the same, as a record
    assert w.flow_set(f"{ANY}/32", now=100.0).packets.tolist() == [2]
