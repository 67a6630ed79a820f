"""FRR's RIB over real SSH: vtysh JSON (the shared corpus and an anycast leaf) polled into DeviceState.rib,
compared with the kernel FIB, turned into events, refused with one line when it does not parse."""

from __future__ import annotations

import json

import pytest

from anycast_tui.collect.commands import FRR_RIB, FRR_RUNNING, LINUX_POLL
from anycast_tui.collect.poller import Poller
from anycast_tui.lab.sshserver import CommandResult
from anycast_tui.model import events
from anycast_tui.model.rib import rib_fib
from anycast_tui.model.types import EventKind, HealthStatus, Role
from anycast_tui.parse.frr_rib import rib_from_outputs
from anycast_tui.ui.view import address_owners, group_view

from ssh_fixtures import CannedDevice

pytestmark = pytest.mark.ssh

FAST = dict(command_timeout_s=2.0, connect_timeout_s=2.0, backoff_base_s=0.01, backoff_max_s=0.05)
RIB = FRR_RIB.line
# the running configuration the same vtysh answers (no nexthop-group: nothing for resilient-not-in-effect)
CONFIG = {FRR_RUNNING.line: CommandResult("Building configuration...\n\nCurrent configuration:\n!\nfrr version 8.4.4\n"
                                          "frr defaults datacenter\nhostname leaf01\n!\nend\n")}
KERNEL4 = next(c.line for c in LINUX_POLL if c.id == "routes4")
ANY = "192.0.2.53/32"


def _anycast_rib(n_fib: int, extra_hops: int = 0) -> str:
    """``show ip route json`` of the canned leaf: 192.0.2.53/32 via swp3/swp4 (as its kernel has it)."""
    hops = [{"fib": i < n_fib, "ip": gw, "afi": "ipv4", "interfaceName": dev, "active": True, "weight": 1}
            for i, (gw, dev) in enumerate([("198.18.2.1", "swp3"), ("198.18.2.3", "swp4"),
                                           ("198.18.2.5", "swp5")][:2 + extra_hops])]
    return json.dumps({ANY: [{"prefix": ANY, "protocol": "bgp", "selected": True, "destSelected": True,
                              "distance": 20, "metric": 0, "installed": True, "table": 254, "nexthops": hops}],
                       "198.18.0.11/32": [{"prefix": "198.18.0.11/32", "protocol": "connected", "selected": True,
                                           "installed": True, "nexthops": [{"fib": True, "directlyConnected": True,
                                                                            "interfaceName": "lo", "active": True}]}]})


async def _poll(poller: Poller):
    return await poller.poll_once()


def _vtysh(routes4: str, routes6: str = "{}", bgp4: str = "{}", bgp6: str = "{}") -> CommandResult:
    """What one ``vtysh -c .. -c ..`` prints: the four JSON documents one after the other."""
    return CommandResult("\n".join(t.rstrip("\n") for t in (routes4, routes6, bgp4, bgp6)) + "\n")


async def test_corpus_frr_outputs_land_in_the_state(make_farm, corpus_dir):
    texts = {"frr_routes4": (corpus_dir / "frr__vtysh-show-ip-route-json__6.json").read_text(),
             "frr_routes6": (corpus_dir / "frr__vtysh-show-ipv6-route-json__1.json").read_text(),
             "frr_bgp4": (corpus_dir / "sonic__vtysh-show-ip-bgp-json__1.json").read_text(),
             "frr_bgp6": "{}\n"}
    leaf = CannedDevice("leaf", overrides={RIB: _vtysh(*texts.values()), **CONFIG})
    farm = await make_farm({"leaf01": leaf})
    poller = Poller(farm.inventory({"leaf01": Role.LEAF}, platform="frr", **FAST))
    try:
        snap = await _poll(poller)
    finally:
        await poller.stop()
    st = snap.devices["leaf01"]
    assert st.health.status is HealthStatus.OK and not poller.optional_errors("leaf01")
    want, errors = rib_from_outputs(texts)  # the four outputs apart
    assert not errors and st.rib == want
    assert leaf.calls.count(RIB) == 1  # the RIB and BGP state in one vtysh (the running config in its own)
    assert not [c for c in leaf.calls if c.startswith("vtysh") and c not in (RIB, FRR_RUNNING.line)]
    entries = [r for r in st.rib.routes if r.dst == "10.0.1.1/32"]
    assert [(r.protocol, r.selected, r.installed) for r in entries] == [("ospf", False, False),
                                                                        ("connected", True, True)]
    assert [(nh.fib, nh.active) for nh in entries[1].nexthops] == [(True, True)]
    assert {r.family for r in st.rib.routes} == {4, 6}
    (bgp,) = st.rib.bgp
    assert (bgp.prefix, bgp.paths, bgp.multipath) == ("0.0.0.0/0", 2, ("10.0.0.7", "10.0.0.1"))
    assert not [k for k, _ in bgp.extra if k == "path"]  # the per-path JSON is not kept


async def test_rib_fib_agreement_line_and_mismatch_event(make_farm):
    leaf = CannedDevice("leaf", overrides={RIB: _vtysh(_anycast_rib(2)), **CONFIG})
    farm = await make_farm({"leaf01": leaf})
    poller = Poller(farm.inventory({"leaf01": Role.LEAF}, platform="frr", **FAST), rib_interval_s=0.0)
    try:
        before = await _poll(poller)
        st = before.devices["leaf01"]
        c = rib_fib(st, ANY)
        assert c is not None and (c.bgp, c.zebra, c.kernel, c.agree) == (2, 2, 2, True)
        assert group_view(st, ANY, address_owners(before)).rib == "BGP: 2 paths, FIB: 2"
        # BGP now has a third path zebra could not install: the kernel still forwards over 2
        leaf.overrides[RIB] = _vtysh(_anycast_rib(2, extra_hops=1))
        after = await _poll(poller)
        held = await _poll(poller)  # still so in the next poll: now it is an event
        held2 = await _poll(poller)
        # and back
        leaf.overrides[RIB] = _vtysh(_anycast_rib(2))
        again = await _poll(poller)
        # a disagreement seen in one poll only (a restore's ~100 ms) is none
        leaf.overrides[RIB] = _vtysh(_anycast_rib(2, extra_hops=1))
        blip = await _poll(poller)
        leaf.overrides[RIB] = _vtysh(_anycast_rib(2))
        gone = await _poll(poller)
    finally:
        await poller.stop()

    def rib_events(a, b):
        return [e for e in events.diff(a, b) if e.kind.value.startswith("rib_")]

    assert group_view(after.devices["leaf01"], ANY, {}).rib == "BGP: 3 paths, FIB: 2 ≠"  # the view shows what it sees
    assert rib_events(before, after) == []
    (ev,) = rib_events(after, held)
    assert (ev.kind, ev.device, ev.prefix, ev.before, ev.after) == (EventKind.RIB_FIB_MISMATCH, "leaf01", ANY, "agree",
                                                                   "BGP: 3 paths, FIB: 2")
    assert ev.detail == "leaf01 192.0.2.53/32: RIB/FIB mismatch: BGP: 3 paths, FIB: 2"
    assert rib_events(held, held2) == []  # once
    (back,) = rib_events(held2, again)
    assert back.kind is EventKind.RIB_FIB_AGREE and back.after == "BGP: 2 paths, FIB: 2"
    assert rib_events(before, again) == []
    assert group_view(blip.devices["leaf01"], ANY, {}).rib == "BGP: 3 paths, FIB: 2 ≠"
    assert rib_events(again, blip) == [] and rib_events(blip, gone) == []


async def test_rib_read_again_only_when_the_fib_changed_or_the_interval_passed(make_farm):
    leaf = CannedDevice("leaf", overrides={RIB: _vtysh(_anycast_rib(2)), **CONFIG})
    farm = await make_farm({"leaf01": leaf})
    poller = Poller(farm.inventory({"leaf01": Role.LEAF}, platform="frr", **FAST), rib_interval_s=3600.0)
    try:
        first = await _poll(poller)
        leaf.overrides[RIB] = _vtysh(_anycast_rib(2, extra_hops=1))
        same_fib = await _poll(poller)  # the kernel's tables did not change: the RIB read with them still holds
        assert poller.rib_reads("leaf01") == 1 and same_fib.devices["leaf01"].rib is first.devices["leaf01"].rib
        kernel = leaf.outputs[KERNEL4]
        leaf.overrides[KERNEL4] = CommandResult(kernel.replace('"metric":20', '"metric":21', 1))
        moved = await _poll(poller)  # a route changed: the RIB is read again, right after
    finally:
        await poller.stop()
    assert poller.rib_reads("leaf01") == 2 and leaf.calls.count(RIB) == 2
    c = rib_fib(moved.devices["leaf01"], ANY)
    assert c is not None and (c.bgp, c.kernel) == (3, 2)


async def test_refused_and_garbage_frr_output_is_one_line_and_the_poll_stays_good(make_farm):
    refused = CommandResult(_anycast_rib(2) + "% Unknown command: show ipv6 route json\n", "", 1)  # vtysh stops
    garbage = CommandResult("% Unknown command\n{\n  \"192.0.2.53/32\": [\n")
    leaf, spine = (CannedDevice("leaf", overrides={RIB: refused, **CONFIG}),
                   CannedDevice("leaf", overrides={RIB: garbage, **CONFIG}))
    farm = await make_farm({"leaf01": leaf, "leaf02": spine})
    poller = Poller(farm.inventory({"leaf01": Role.LEAF, "leaf02": Role.LEAF}, platform="frr", **FAST))
    try:
        first = await _poll(poller)
        second = await _poll(poller)  # same outputs: parsed once, the reasons stay
    finally:
        await poller.stop()
    for snap in (first, second):
        st = snap.devices["leaf01"]
        assert st.health.status is HealthStatus.OK and st.routes
        errors = poller.optional_errors("leaf01")
        assert errors == {p: "vtysh: % Unknown command: show ipv6 route json"
                          for p in ("frr_routes6", "frr_bgp4", "frr_bgp6")}
        assert st.rib is not None and {r.dst for r in st.rib.routes} == {ANY, "198.18.0.11/32"}
        bad = snap.devices["leaf02"]
        assert bad.health.status is HealthStatus.OK and bad.routes and bad.rib is None
        (why,) = poller.optional_errors("leaf02").values()
        assert why.startswith("line 4: not a vtysh JSON document") and "\n" not in why
    assert poller.reparsed("leaf01") == 1
