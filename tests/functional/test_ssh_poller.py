"""The poller against real embedded SSH devices on 127.0.0.1: health, faults, scheduling."""

from __future__ import annotations

import asyncio
import json
import re

import pytest

from anycast_tui.collect.commands import LINUX_POLL
from anycast_tui.collect.poller import Poller, parse_reason
from anycast_tui.lab.sshserver import CommandResult
from anycast_tui.model.types import DeviceState, HealthStatus, Role
from anycast_tui.parse.errors import ParseError

from ssh_fixtures import CannedDevice, canned, wait_for

pytestmark = pytest.mark.ssh

CMD = {c.id: c.line for c in LINUX_POLL}
FAST = dict(command_timeout_s=1.0, connect_timeout_s=2.0, backoff_base_s=0.01, backoff_max_s=0.05)


def _fabric(n: int = 10) -> tuple[dict[str, CannedDevice], dict[str, Role]]:
    handlers: dict[str, CannedDevice] = {}
    roles: dict[str, Role] = {}
    spines = max(1, n // 5)
    for i in range(n):
        spine = i < spines
        name = f"spine{i + 1:02d}" if spine else f"leaf{i - spines + 1:02d}"
        handlers[name] = CannedDevice("spine" if spine else "leaf")
        roles[name] = Role.SPINE if spine else Role.LEAF
    return handlers, roles


async def _setup(make_farm, n: int = 3, **settings):
    handlers, roles = _fabric(n)
    farm = await make_farm(handlers)
    inv = farm.inventory(roles, **{**FAST, **settings})
    return farm, handlers, Poller(inv, interval_s=0.02)


def _dsts(state: DeviceState) -> set[str]:
    return {r.dst for r in state.routes}


async def test_ten_devices_polled_concurrently_all_ok(make_farm):
    farm, handlers, poller = await _setup(make_farm, 10)
    seen: list[DeviceState] = []
    poller.on_state = seen.append
    try:
        snap = await poller.poll_once()
    finally:
        await poller.stop()
    assert list(snap.devices) == list(handlers)
    for name, st in snap.devices.items():
        assert st.health.status is HealthStatus.OK, (name, st.health)
        assert st.health.error is None and st.collected_at_ms == st.health.last_ok_ms
        assert st.device.name == name
        assert sorted(handlers[name].calls) == sorted(CMD.values())  # every command, exactly once
    assert snap.devices["spine01"].device.role is Role.SPINE
    assert "192.0.2.53/32" in _dsts(snap.devices["leaf01"]) and "192.0.2.53/32" in _dsts(snap.devices["spine02"])
    assert snap.anycast_prefixes == ("192.0.2.53/32",)
    assert sorted(s.device.name for s in seen) == sorted(handlers)
    assert all(poller.session(n).connects == 1 for n in handlers)


async def test_connection_is_reused_across_polls(make_farm):
    farm, handlers, poller = await _setup(make_farm, 2)
    try:
        for _ in range(3):
            await poller.poll_once()
    finally:
        await poller.stop()
    assert [ep.counters.connections for ep in farm.endpoints.values()] == [1, 1]
    assert all(len(h.calls) == sum(h.poll_size(k) for k in (1, 2, 3)) for h in handlers.values())


async def test_device_down_goes_stale_others_fine_then_back(make_farm):
    farm, handlers, poller = await _setup(make_farm, 3)
    try:
        first = await poller.poll_once()
        good = first.devices["leaf01"]
        await farm.endpoints["leaf01"].stop()
        snap = await poller.poll_once()
        st = snap.devices["leaf01"]
        assert st.health.status is HealthStatus.STALE and not st.health.permanent
        assert st.health.error == f"leaf01 [127.0.0.1]:{farm.endpoints['leaf01'].port}: connection refused"
        assert st.health.since_ms is not None and st.health.last_ok_ms == good.health.last_ok_ms
        assert st.routes == good.routes and st.collected_at_ms == good.collected_at_ms  # last good data kept
        assert snap.devices["spine01"].health.status is HealthStatus.OK
        assert snap.devices["leaf02"].health.status is HealthStatus.OK
        since = st.health.since_ms
        again = (await poller.poll_once()).devices["leaf01"]
        assert again.health.status is HealthStatus.STALE and again.health.since_ms == since  # since = first failure
        await farm.endpoints["leaf01"].start()
        await poller.start()  # the loop retries after the (short) backoff

        def back() -> bool:
            return poller.snapshot().devices["leaf01"].health.status is HealthStatus.OK
        await wait_for(back)
    finally:
        await poller.stop()
    st = poller.snapshot().devices["leaf01"]
    assert st.health.error is None and st.health.last_ok_ms > good.health.last_ok_ms


async def test_never_reached_device_is_error_not_stale(make_farm):
    farm, handlers, poller = await _setup(make_farm, 2)
    await farm.endpoints["leaf01"].stop()
    try:
        snap = await poller.poll_once()
    finally:
        await poller.stop()
    st = snap.devices["leaf01"]
    assert st.health.status is HealthStatus.ERROR and st.health.last_ok_ms is None
    assert "connection refused" in (st.health.error or "") and st.routes == ()


async def test_auth_failure_is_permanent_without_retry_storm(make_farm):
    farm, handlers, poller = await _setup(make_farm, 2)
    ep = farm.endpoints["leaf01"]
    ep.faults.reject_auth = True
    try:
        await poller.start()
        await wait_for(lambda: poller.polls("leaf01") >= 1)
        attempts = ep.counters.auth_attempts
        connections = ep.counters.connections
        await wait_for(lambda: poller.polls("leaf01") >= 10 and poller.polls("spine01") >= 10)
    finally:
        await poller.stop()
    st = poller.snapshot().devices["leaf01"]
    assert st.health.status is HealthStatus.ERROR and st.health.permanent
    assert st.health.error == f"authentication failed for atui@leaf01 [127.0.0.1]:{ep.port} (publickey); not retrying"
    assert attempts >= 1
    assert (ep.counters.auth_attempts, ep.counters.connections) == (attempts, connections) == (attempts, 1)
    assert poller.session("leaf01").connects == 1
    assert ep.counters.commands == 0
    assert poller.snapshot().devices["spine01"].health.status is HealthStatus.OK


async def test_host_key_mismatch_refused_and_reported(make_farm):
    import asyncssh

    farm, handlers, poller = await _setup(make_farm, 2)
    ep = farm.endpoints["leaf01"]
    impostor = asyncssh.generate_private_key("ssh-ed25519").export_public_key().decode().strip()
    lines = [f"[127.0.0.1]:{ep.port} {impostor}" if line == ep.known_hosts_line() else line
             for line in farm.known_hosts_path.read_text().splitlines()]
    farm.known_hosts_path.write_text("\n".join(lines) + "\n")
    try:
        for _ in range(3):
            snap = await poller.poll_once()
    finally:
        await poller.stop()
    st = snap.devices["leaf01"]
    assert st.health.status is HealthStatus.ERROR and st.health.permanent
    assert st.health.error is not None
    assert st.health.error.startswith(f"host key for leaf01 [127.0.0.1]:{ep.port} does not match known_hosts")
    assert ep.counters.auth_attempts == 0 and ep.counters.commands == 0  # nothing sent to the impostor
    assert poller.session("leaf01").connects == 1 and ep.counters.connections == 1
    assert snap.devices["spine01"].health.status is HealthStatus.OK


async def test_unknown_host_key_refused(make_farm):
    farm, handlers, poller = await _setup(make_farm, 2)
    ep = farm.endpoints["leaf01"]
    farm.known_hosts_path.write_text(farm.endpoints["spine01"].known_hosts_line() + "\n")
    try:
        snap = await poller.poll_once()
    finally:
        await poller.stop()
    assert snap.devices["leaf01"].health.error is not None
    assert f"host key for leaf01 [127.0.0.1]:{ep.port} is not in known_hosts" in snap.devices["leaf01"].health.error
    assert ep.counters.commands == 0 and snap.devices["spine01"].health.status is HealthStatus.OK


@pytest.mark.parametrize("fault", ["hang", "delay"])
async def test_command_timeout_goes_stale_and_loop_keeps_running(make_farm, fault):
    farm, handlers, poller = await _setup(make_farm, 2, command_timeout_s=0.3)
    ep = farm.endpoints["leaf01"]
    try:
        await poller.poll_once()
        if fault == "hang":
            ep.faults.hang = True
        else:
            ep.faults.delay_s = 3.0
        await poller.start()
        done = poller.polls("leaf01")
        await wait_for(lambda: poller.polls("leaf01") >= done + 2)  # the loop goes on while it fails
        st = poller.snapshot().devices["leaf01"]
        assert st.health.status is HealthStatus.STALE
        assert re.fullmatch(r"\w+: no answer within 0\.3 s", st.health.error or ""), st.health.error
        ep.faults.hang, ep.faults.delay_s = False, 0.0
        await wait_for(lambda: poller.snapshot().devices["leaf01"].health.status is HealthStatus.OK)
    finally:
        await poller.stop()
    assert poller.session("leaf01").connects == 1  # a timed-out command does not cost the connection


async def test_connection_dropped_mid_output_uses_no_partial_data(make_farm):
    farm, handlers, poller = await _setup(make_farm, 2)
    ep = farm.endpoints["leaf01"]
    ep.faults.drop_after_bytes = 120
    try:
        first = (await poller.poll_once()).devices["leaf01"]
        assert first.health.status is HealthStatus.ERROR and first.routes == () and first.collected_at_ms is None
        assert "closed" in (first.health.error or "")
        ep.faults.drop_after_bytes = None
        good = (await poller.poll_once()).devices["leaf01"]
        assert good.health.status is HealthStatus.OK
        # Now serve a shorter routes table, but cut it: the old table must survive untouched.
        handlers["leaf01"].overrides[CMD["routes4"]] = CommandResult("[]\n")
        ep.faults.drop_after_bytes = 1
        stale = (await poller.poll_once()).devices["leaf01"]
    finally:
        await poller.stop()
    assert stale.health.status is HealthStatus.STALE
    assert stale.routes == good.routes and "192.0.2.53/32" in _dsts(stale)
    assert re.search(r"(channel closed before the command finished|connection)", stale.health.error or "")


async def test_garbage_output_goes_stale_with_parse_error_line(make_farm):
    farm, handlers, poller = await _setup(make_farm, 2)
    pretty = json.dumps(json.loads(canned("leaf")[CMD["routes4"]]), indent=4).splitlines()
    pretty[2] = '        "protocol": bgp,'  # line 3: unquoted value
    try:
        good = (await poller.poll_once()).devices["leaf01"]
        handlers["leaf01"].overrides[CMD["routes4"]] = CommandResult("\n".join(pretty) + "\n")
        st = (await poller.poll_once()).devices["leaf01"]
        assert st.health.status is HealthStatus.STALE and not st.health.permanent
        assert (st.health.error or "").startswith("routes4: line 3: "), st.health.error
        assert st.routes == good.routes
        farm.endpoints["spine01"].faults.garbage = True  # every command answers garbage
        sp = (await poller.poll_once()).devices["spine01"]
    finally:
        await poller.stop()
    assert sp.health.status is HealthStatus.STALE and re.search(r"line \d+", sp.health.error or "")


async def test_nonzero_exit_and_missing_command(make_farm):
    farm, handlers, poller = await _setup(make_farm, 3)
    handlers["leaf01"].overrides[CMD["buckets"]] = CommandResult(
        "", 'Object "nexthop" is unknown, try "ip help".\n', 255)
    handlers["leaf02"].overrides[CMD["sysctl"]] = CommandResult("", "bash: sysctl: command not found\n", 127)
    try:
        snap = await poller.poll_once()
    finally:
        await poller.stop()
    assert snap.devices["leaf01"].health.status is HealthStatus.ERROR
    assert snap.devices["leaf01"].health.error == 'buckets: exit 255: Object "nexthop" is unknown, try "ip help".'
    assert snap.devices["leaf02"].health.error == (
        "sysctl: command not found on the device (exit 127): bash: sysctl: command not found")
    assert snap.devices["spine01"].health.status is HealthStatus.OK


async def test_exit_status_fault_without_stderr(make_farm):
    farm, handlers, poller = await _setup(make_farm, 2)
    farm.endpoints["leaf01"].faults.exit_status = 1
    try:
        st = (await poller.poll_once()).devices["leaf01"]
    finally:
        await poller.stop()
    assert re.fullmatch(r"\w+: exit 1: no error output", st.health.error or ""), st.health.error


async def test_slow_device_does_not_delay_the_others(make_farm):
    gate = asyncio.Event()
    handlers, roles = _fabric(4)
    handlers["leaf02"] = CannedDevice("leaf", gate=gate)  # answers only when released
    farm = await make_farm(handlers)
    poller = Poller(farm.inventory(roles, **{**FAST, "command_timeout_s": 30.0}),
                    interval_s=0.01)
    try:
        await poller.start()
        fast = [n for n in handlers if n != "leaf02"]
        await wait_for(lambda: all(poller.polls(n) >= 5 for n in fast))
        assert poller.polls("leaf02") == 0
        assert poller.snapshot().devices["leaf02"].health.status is HealthStatus.UNKNOWN
        gate.set()
        await wait_for(lambda: poller.polls("leaf02") >= 1)
    finally:
        await poller.stop()
    assert poller.snapshot().devices["leaf02"].health.status is HealthStatus.OK


async def test_polls_of_one_device_never_overlap(make_farm):
    handlers, roles = _fabric(2)
    for h in handlers.values():
        h.delay_s = 0.02
    farm = await make_farm(handlers)
    poller = Poller(farm.inventory(roles, **FAST), interval_s=0.0)
    try:
        await poller.start()
        # poll_once racing the background loops must queue behind them, not overlap
        await asyncio.gather(*(poller.poll_once() for _ in range(4)))
        await wait_for(lambda: all(poller.polls(n) >= 8 for n in handlers))
    finally:
        await poller.stop()
    for name, h in handlers.items():
        assert len(h.calls) >= 8 * (len(CMD) - 1)
        assert h.max_active_polls == 1, name


@pytest.mark.parametrize("exc, expected", [
    (ParseError(12, "bad dst", "ip-route-json", "x y", "routes4"), "routes4: line 12: bad dst: 'x y'"),
    (ParseError(3, "unexpected token", "routes6"), "routes6: line 3: unexpected token"),
    (ParseError(2, "bad bucket", "ip-nexthop-bucket-json"), "buckets: line 2: bad bucket"),
    (ParseError(0, "output missing", command="sysctl"), "sysctl: input: output missing"),
    # device text that looks like a command id is not taken for one
    (ParseError(5, "routes6: odd", "ip-route-json", None, "routes4"), "routes4: line 5: routes6: odd"),
    (ParseError(4, "odd", "ip-route-json"), "ip-route-json: line 4: odd"),  # two commands share the kind
])
def test_parse_reason_names_command_and_line(exc, expected):
    assert parse_reason(exc, LINUX_POLL) == expected


async def test_unchanged_outputs_are_not_parsed_again_and_give_the_same_records(make_farm):
    """A device whose outputs did not change keeps its records (same objects) with a new time; a change is parsed."""
    from anycast_tui.lab.sim import SimFabric
    from anycast_tui.collect.poller import Poller
    from anycast_tui.model.types import HealthStatus

    sim = SimFabric()
    farm = await make_farm({n: sim.handler(n) for n in ("spine01", "leaf03")})
    poller = Poller(farm.inventory(poll_interval_s=60))
    try:
        first = (await poller.poll_once()).devices["spine01"]
        second = (await poller.poll_once()).devices["spine01"]
        assert second.health.status is HealthStatus.OK
        assert second.routes is first.routes and second.interfaces is first.interfaces
        assert second.collected_at_ms >= first.collected_at_ms
        assert poller.reparsed("spine01") == 1 and poller.polls("spine01") == 2
        sim.fail_link("spine01", "leaf03")
        third = (await poller.poll_once()).devices["spine01"]
        assert poller.reparsed("spine01") == 2
        anycast = next(r for r in third.routes if r.dst == "192.0.2.53/32" and r.table == "main")
        assert len(anycast.nexthops) == 3
    finally:
        await poller.stop()


async def test_stop_returns_even_when_a_task_swallows_its_cancel(make_farm):
    """Python 3.11's wait_for (and some libraries) can swallow a cancel; stop() cancels again until done.

    CI once hung here for 300 s: a monitor task lost its cancel and waited for a poll that never came.
    """
    farm, handlers, poller = await _setup(make_farm, 2)
    swallowed = 0

    async def stubborn() -> None:
        nonlocal swallowed
        while True:
            try:
                await asyncio.Event().wait()  # no timer: only a cancel ends it
            except asyncio.CancelledError:
                swallowed += 1
                if swallowed > 2:
                    raise
    await poller.start()
    poller.track(asyncio.create_task(stubborn()))
    await wait_for(lambda: poller.polls("leaf01") >= 1)
    await poller.stop()
    assert swallowed == 3 and not poller.running


async def test_buckets_are_asked_only_while_a_resilient_group_exists(make_farm):
    """No resilient group: one channel less per poll. One appears: its buckets come in that same poll."""
    farm, handlers, poller = await _setup(make_farm, 2)  # spine01 has no nexthop objects, leaf01 a resilient group
    spine, leaf = handlers["spine01"], handlers["leaf01"]
    try:
        for _ in range(3):
            await poller.poll_once()
        assert [l for l in spine.calls if l == CMD["buckets"]] == [CMD["buckets"]]  # the first poll only
        assert leaf.calls.count(CMD["buckets"]) == 3
        assert poller.snapshot().devices["spine01"].nexthops.groups == ()
        # a resilient group appears on the spine: the same poll reads its buckets
        spine.overrides[CMD["nexthops"]] = CommandResult(leaf.outputs[CMD["nexthops"]])
        spine.overrides[CMD["buckets"]] = CommandResult(leaf.outputs[CMD["buckets"]])
        st = (await poller.poll_once()).devices["spine01"]
    finally:
        await poller.stop()
    assert spine.calls.count(CMD["buckets"]) == 2
    leaf_groups = poller.snapshot().devices["leaf01"].nexthops.groups
    assert st.nexthops.groups == leaf_groups and any(g.bucket_table for g in st.nexthops.groups)


async def test_hash_sysctls_read_per_connection_then_every_interval(make_farm):
    """Configuration, not state: read on a new connection and every sysctl_interval_s; polls between reuse it."""
    farm, handlers, poller = await _setup(make_farm, 2)
    leaf = handlers["leaf01"]
    poller.sysctl_interval_s = 0.5
    try:
        for _ in range(3):
            await poller.poll_once()
        assert leaf.calls.count(CMD["sysctl"]) == 1 and poller.sysctl_reads("leaf01") == 1
        seed = poller.snapshot().devices["leaf01"].hash.seed
        lines = leaf.outputs[CMD["sysctl"]].splitlines()
        lines[2] = str(seed + 1)  # the seed changes on the device
        leaf.overrides[CMD["sysctl"]] = CommandResult("\n".join(lines) + "\n")
        assert (await poller.poll_once()).devices["leaf01"].hash.seed == seed  # within the interval: last read
        await asyncio.sleep(0.55)
        assert (await poller.poll_once()).devices["leaf01"].hash.seed == seed + 1
        assert leaf.calls.count(CMD["sysctl"]) == 2
        await poller.session("leaf01").close()  # a new connection reads them again at once
        await poller.poll_once()
        assert leaf.calls.count(CMD["sysctl"]) == 3 and poller.session("leaf01").connects == 2
        poller.sysctl_interval_s = 0  # 0: every poll
        await poller.poll_once()
        await poller.poll_once()
        assert leaf.calls.count(CMD["sysctl"]) == 5
    finally:
        await poller.stop()
