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
