"""SSHSession against the embedded server: exact output, typed errors, no partial data."""

from __future__ import annotations

import pytest

from anycast_tui.collect.commands import LINUX_POLL, Command, route_get
from anycast_tui.collect.ssh import (
    ChannelClosed,
    CommandFailed,
    CommandNotAllowed,
    CommandNotFound,
    CommandTimeout,
    SSHSession,
)
from anycast_tui.lab.sshserver import CommandResult

from ssh_fixtures import CannedDevice

pytestmark = pytest.mark.ssh

ROUTES4 = LINUX_POLL[0]


async def _session(make_farm, handler, **settings):
    farm = await make_farm({"leaf01": handler})
    cfg = farm.inventory(**{"command_timeout_s": 0.5, **settings}).devices[0]
    return farm, SSHSession(cfg)


async def test_output_is_captured_exactly_including_invalid_utf8(make_farm):
    text = "[]\n\u00e9\udcff tail without newline"  # \udcff: a raw 0xff byte on the wire
    handler = CannedDevice("leaf", overrides={ROUTES4.line: CommandResult(text, "warn\n")})
    farm, s = await _session(make_farm, handler)
    try:
        out = await s.run(ROUTES4)
    finally:
        await s.close()
    assert out.stdout == "[]\n\u00e9\ufffd tail without newline" and out.stderr == "warn\n"
    assert out.exit_status == 0 and out.command is ROUTES4


async def test_drop_mid_output_never_returns_the_valid_looking_prefix(make_farm):
    handler = CannedDevice("leaf", overrides={ROUTES4.line: CommandResult("[]\n" + " " * 5000 + "[1]\n")})
    farm, s = await _session(make_farm, handler)
    farm.endpoints["leaf01"].faults.drop_after_bytes = 3  # "[]\n" arrives, then the connection dies
    try:
        with pytest.raises(ChannelClosed) as ei:
            await s.run(ROUTES4)
        assert not s.connected
        farm.endpoints["leaf01"].faults.drop_after_bytes = None
        again = await s.run(ROUTES4)  # lazily reconnects
    finally:
        await s.close()
    assert ei.value.command == "routes4" and "\n" not in str(ei.value)
    assert again.stdout.endswith("[1]\n") and s.connects == 2


async def test_timeout_frees_the_channel_and_keeps_the_connection(make_farm):
    farm, s = await _session(make_farm, CannedDevice("leaf"), max_channels=1)
    ep = farm.endpoints["leaf01"]
    try:
        ep.faults.hang = True
        for _ in range(3):  # with one channel allowed, a leaked channel would block the next run
            with pytest.raises(CommandTimeout, match=r"^routes4: no answer within 0\.5 s$"):
                await s.run(ROUTES4)
        ep.faults.hang = False
        out = await s.run(ROUTES4)
    finally:
        await s.close()
    assert out.exit_status == 0 and s.connects == 1 and ep.counters.connections == 1


async def test_exit_statuses_become_typed_errors(make_farm):
    handler = CannedDevice("leaf", overrides={
        LINUX_POLL[1].line: CommandResult("partial", "RTNETLINK answers: Operation not supported\nmore\n", 2)})
    farm, s = await _session(make_farm, handler)
    try:
        with pytest.raises(CommandFailed) as failed:
            await s.run(LINUX_POLL[1])
        with pytest.raises(CommandNotFound) as missing:
            await s.run(route_get("192.0.2.53", src="203.0.113.7", proto="tcp", sport=1234, dport=53))
    finally:
        await s.close()
    assert str(failed.value) == "routes6: exit 2: RTNETLINK answers: Operation not supported"
    assert failed.value.exit_status == 2 and not failed.value.permanent
    assert missing.value.exit_status == 127 and "command not found" in str(missing.value)
    assert handler.calls[-1] == ("ip -j route get 192.0.2.53 from 203.0.113.7 ipproto tcp sport 1234 dport 53")


async def test_commands_outside_the_fixed_list_are_never_sent(make_farm):
    handler = CannedDevice("leaf")
    farm = await make_farm({"leaf01": handler})
    session = SSHSession(farm.inventory().devices[0])
    try:
        with pytest.raises(CommandNotAllowed, match="not in the fixed read-only list"):
            await session.run(Command("routes4", ("reboot",), "ip-route-json"))
        with pytest.raises(CommandNotAllowed):
            await session.run_many([LINUX_POLL[0], Command("x", ("cat", "/etc/shadow"), "x")])
        out = await session.run(LINUX_POLL[0])
    finally:
        await session.close()
    assert out.exit_status == 0 and out.stdout.startswith("[{")
    assert handler.calls == [LINUX_POLL[0].line]


def test_backoff_grows_with_jitter_is_capped_and_resets():
    import random

    from anycast_tui.collect.backoff import Backoff

    b = Backoff(base_s=1.0, max_s=8.0, jitter=0.5, rng=random.Random(7))
    delays = [b.next_delay() for _ in range(6)]
    for d, raw in zip(delays, (1, 2, 4, 8, 8, 8)):
        assert raw * 0.5 <= d <= raw
    assert len(set(delays)) == 6  # jittered: no two equal
    b.reset()
    assert 0.5 <= b.next_delay() <= 1.0
    assert Backoff(base_s=2.0, jitter=0.0).next_delay() == 2.0


async def test_refused_device_waits_out_the_backoff_with_a_stable_message(make_farm):
    from anycast_tui.collect.ssh import BackoffWait, ConnectError

    farm, s = await _session(make_farm, CannedDevice("leaf"), backoff_base_s=60.0, backoff_max_s=60.0)
    await farm.endpoints["leaf01"].stop()
    try:
        with pytest.raises(ConnectError) as first:
            await s.run(ROUTES4)
        assert not isinstance(first.value, BackoffWait)
        for _ in range(5):
            with pytest.raises(BackoffWait) as later:
                await s.run_many(LINUX_POLL)
            assert str(later.value) == str(first.value) and 0 < later.value.retry_in_s <= 60
    finally:
        await s.close()
    assert s.connects == 1 and str(first.value).endswith(": connection refused")


async def test_missing_known_hosts_key_or_password_env_are_permanent(make_farm, tmp_path, monkeypatch):
    import dataclasses

    from anycast_tui.collect.ssh import AuthError, HostKeyError

    farm, s = await _session(make_farm, CannedDevice("leaf"))
    cfg = s.cfg
    monkeypatch.delenv("ATUI_TEST_UNSET_PW", raising=False)
    cases = [
        (dataclasses.replace(cfg, known_hosts=tmp_path / "none"), HostKeyError, "known_hosts file"),
        (dataclasses.replace(cfg, key_path=tmp_path / "nokey"), AuthError, "private key"),
        (dataclasses.replace(cfg, password_env="ATUI_TEST_UNSET_PW"), AuthError, "ATUI_TEST_UNSET_PW is not set"),
    ]
    for bad, kind, text in cases:
        session = SSHSession(bad)
        for _ in range(2):
            with pytest.raises(kind, match=text) as ei:
                await session.run(ROUTES4)
            assert ei.value.permanent
        assert session.connects == 1
    assert farm.endpoints["leaf01"].counters.connections == 0  # never even dialled
    # reset() after fixing the cause: the same session works again
    session = SSHSession(dataclasses.replace(cfg, known_hosts=tmp_path / "later"))
    with pytest.raises(HostKeyError):
        await session.run(ROUTES4)
    (tmp_path / "later").write_text(farm.known_hosts_path.read_text())
    session.reset()
    try:
        assert (await session.run(ROUTES4)).exit_status == 0
    finally:
        await session.close()
