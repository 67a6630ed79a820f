"""The simulated session and the SSH poller assemble a device the same way (``collect.devicestate``): the
simulated fabric read in process by ``SimSession`` and over real SSH by the ``Poller`` gives equal states on
every device — live flows included, which the simulated session did not read before."""

from __future__ import annotations

import dataclasses

import pytest

from anycast_tui.collect.poller import Poller
from anycast_tui.lab.sim import SimConfig, SimFabric
from anycast_tui.model.types import DeviceState, Flow, HealthStatus
from anycast_tui.session import SimSession

pytestmark = pytest.mark.ssh

T0 = 1_764_000_000.0
ANY = "192.0.2.53"
FAST = dict(command_timeout_s=2.0, connect_timeout_s=2.0, backoff_base_s=0.01, backoff_max_s=0.05)
CONNS = {
    "server01": (Flow(6, "203.0.113.7", 40001, ANY, 53), Flow(17, "203.0.113.8", 40002, ANY, 53)),
    "server03": (Flow(6, "203.0.113.9", 40003, ANY, 53),),
}


def _sim() -> SimFabric:
    sim = SimFabric(SimConfig(), clock=lambda: T0)
    for server, flows in CONNS.items():
        sim.set_connections(server, flows)
    return sim


def comparable(state: DeviceState) -> DeviceState:
    """Time and health are each read's own."""
    return dataclasses.replace(state, collected_at_ms=None, health=DeviceState(state.device).health)


async def test_sim_session_and_ssh_poller_give_equal_states_with_live_flows(make_farm):
    sim = _sim()
    session = SimSession(sim, clock=lambda: T0, prefixes=(f"{ANY}/32",), flow_sources=("ss",))
    by_session = session.poll()
    assert by_session is not None
    farm = await make_farm({n: sim.handler(n) for n in sim.devices})
    poller = Poller(farm.inventory(sim.roles(), platform="sim", anycast_prefixes=(f"{ANY}/32",),
                                   flow_sources=("ss",), **FAST), interval_s=60.0)
    try:
        by_ssh = await poller.poll_once()
    finally:
        await poller.stop()
    assert set(by_ssh.devices) == set(by_session.devices) == set(sim.devices)
    for name in sim.devices:
        a, b = by_session.devices[name], by_ssh.devices[name]
        assert a.health.status is b.health.status is HealthStatus.OK, (name, a.health, b.health)
        assert comparable(a) == comparable(b), name
    for server, flows in CONNS.items():  # what the servers' ss printed, as the fabric carries it
        assert by_session.devices[server].flows == flows
    assert by_session.devices["server02"].flows == () and by_session.devices["spine01"].flows == ()


def test_sim_session_reads_flows_only_when_asked():
    plain = SimSession(_sim(), clock=lambda: T0).poll()
    assert plain is not None and all(st.flows == () for st in plain.devices.values())
    conntrack = SimSession(_sim(), clock=lambda: T0, flow_sources=("conntrack",)).poll()
    assert conntrack is not None  # the simulator has no conntrack: no flows, UDP unknown, the poll still good
    assert all(st.flows == () and not st.flows_udp_known and st.health.status is HealthStatus.OK
               for st in conntrack.devices.values())
