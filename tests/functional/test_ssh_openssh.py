"""The SSH collector against OpenSSH's own sshd as operators configure it (issue 16 items 1 and 2).

``MaxSessions 1`` polls (commands take turns on the one connection, the ``ip monitor`` stream turns
itself off and says why); a hung command is killed and its session slot freed, so the device is
good again at the first poll after the fault ends; a flooding command is cut at ``max_output_mib``;
garbage is a parse error; and nothing of ours is left running on the device — checked with ``ps``
on the device user — after a command is given up (even one cancelled while its channel opens), after the stream's channel closes and after the
collector stops.
"""

from __future__ import annotations

import asyncio

import pytest

from anycast_tui.collect.commands import LINUX_POLL
from anycast_tui.collect.poller import Poller
from anycast_tui.collect.ssh import CommandTimeout, OutputTooLarge, SSHSession
from anycast_tui.model.types import HealthStatus

from openssh_device import OpenSSHDevice, require_root
from ssh_fixtures import wait_for

pytestmark = pytest.mark.ssh

FAST = dict(command_timeout_s=1.0, connect_timeout_s=5.0, backoff_base_s=0.1, backoff_max_s=0.2)
ROUTES4 = LINUX_POLL[0]


@pytest.fixture
async def device():
    require_root()
    made: list[OpenSSHDevice] = []

    async def make(**kw: object) -> OpenSSHDevice:
        dev = OpenSSHDevice(**kw)  # type: ignore[arg-type]
        made.append(dev)
        await dev.start()
        return dev

    yield make
    for dev in made:
        dev.stop()


def _status(poller: Poller) -> HealthStatus:
    return poller.snapshot().devices["leaf01"].health.status


async def _stopped(poller: Poller, dev: OpenSSHDevice) -> None:
    """Stop the collector; then nothing of the device's login may run there, sshd's own processes included."""
    await poller.stop()
    await _nothing_left(dev)


async def _nothing_left(dev: OpenSSHDevice) -> None:
    try:
        await wait_for(lambda: not dev.all_of_login(), limit_s=60)
    except AssertionError:
        raise AssertionError(f"left on the device: {dev.all_of_login()}") from None


@pytest.mark.parametrize("settings", [{}, {"max_channels": 1, "stream": False}], ids=["defaults", "one-channel"])
async def test_max_sessions_1_polls_and_the_stream_steps_aside(device, settings):
    dev = await device(max_sessions=1)
    poller = Poller(dev.inventory(**{**FAST, "command_timeout_s": 10.0, **settings}), interval_s=0.05)
    try:
        await poller.start()
        await wait_for(lambda: poller.polls("leaf01") >= 5, limit_s=60)
        st = poller.snapshot().devices["leaf01"]
        assert st.health.status is HealthStatus.OK, st.health
        assert st.routes and st.interfaces
        assert all(t[1] is HealthStatus.OK for t in poller.transitions("leaf01")), poller.transitions("leaf01")
        if settings.get("stream", True):
            assert poller.session("leaf01").session_limit == 1
            await wait_for(lambda: poller.stream_error("leaf01") is not None, limit_s=30)
            assert "MaxSessions" in (poller.stream_error("leaf01") or "")
            assert not poller.streaming("leaf01")
        assert "no more sessions" in dev.sshd_log() or not settings.get("stream", True)
    finally:
        await _stopped(poller, dev)


async def test_hung_commands_are_killed_and_the_device_recovers_at_the_next_poll(device):
    dev = await device(max_sessions=2)
    poller = Poller(dev.inventory(**FAST, stream=False), interval_s=0.05)
    try:
        await poller.start()
        await wait_for(lambda: _status(poller) is HealthStatus.OK, limit_s=30)
        dev.set_mode("hang")
        await wait_for(lambda: _status(poller) is HealthStatus.STALE, limit_s=30)
        reason = poller.snapshot().devices["leaf01"].health.error or ""
        assert "no answer within 1 s" in reason, reason
        timed_out = poller.polls("leaf01")
        await wait_for(lambda: poller.polls("leaf01") >= timed_out + 3, limit_s=30)  # several timeouts more
        # every given-up command was killed: at most the ones in flight now are running
        await wait_for(lambda: len(dev.ours()) <= 2, limit_s=60)
        dev.set_mode("normal")
        before = poller.polls("leaf01")
        await wait_for(lambda: _status(poller) is HealthStatus.OK, limit_s=30)
        assert poller.polls("leaf01") <= before + 2  # the first or second poll after the fault: no slot was kept
        assert "session signalling" not in dev.sshd_log()
    finally:
        await _stopped(poller, dev)


async def test_commands_cancelled_by_stop_end_on_the_device(device):
    dev = await device()
    poller = Poller(dev.inventory(**{**FAST, "command_timeout_s": 3600.0}, stream=False), interval_s=0.05)
    try:
        await poller.start()
        await wait_for(lambda: _status(poller) is HealthStatus.OK, limit_s=30)
        dev.set_mode("hang")
        await wait_for(lambda: any("sleep 3600" in ln for ln in dev.ours()), limit_s=30)  # a poll hangs
    finally:
        await _stopped(poller, dev)  # its commands are cancelled: killed and closed, nothing left


async def test_commands_cancelled_while_their_channel_opens_end_on_the_device(device):
    """A command given up at any moment — its exec just sent, its process just forked — is ended.

    sshd signals a command's process group, which the command makes a moment after sshd forked it: a
    kill right after the exec can find no group and be lost, and without a pty closing the channel
    does not end the process.  Dozens of commands cancelled a few hundred microseconds apart land in
    every one of those moments.
    """
    dev = await device()
    s = SSHSession(dev.config(**{**FAST, "command_timeout_s": 3600.0}, stream=False))
    try:
        await s.run(ROUTES4)
        dev.set_mode("hang")
        for i in range(60):
            task = asyncio.ensure_future(s.run(ROUTES4))
            await asyncio.sleep((i % 20) * 0.0004)
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
    finally:
        await s.close()
    await _nothing_left(dev)


async def test_forced_command_that_hangs_cannot_be_signalled_so_its_connection_is_replaced(device):
    dev = await device(max_sessions=2, forced=True)
    cfg = dev.config(**FAST, stream=False, max_channels=1)
    s = SSHSession(cfg)
    try:
        await s.run(ROUTES4)
        dev.set_mode("hang")
        for _ in range(3):  # sshd keeps each one's slot: refuses signals to forced commands
            with pytest.raises(CommandTimeout):
                await s.run(ROUTES4)
        assert "refusing to send signal" in dev.sshd_log()
        dev.set_mode("normal")
        out = await s.run(ROUTES4)  # a connection whose slots stay held is replaced
        assert out.exit_status == 0 and s.connects >= 2 and s.session_limit == 2
    finally:
        await s.close()
        left = dev.stop()
    # only the hung forced commands, which OpenSSH gives no way to end (README), and sshd's exiting ones
    assert all("sleep 3600" in ln or ln.split()[1] == "sshd" for ln in left), left


async def test_flooding_command_is_cut_at_max_output_and_killed(device):
    dev = await device()
    dev.set_mode("flood")
    poller = Poller(dev.inventory(**{**FAST, "command_timeout_s": 30.0}, stream=False, max_output_mib=1))
    try:
        snap = await poller.poll_once()
        st = snap.devices["leaf01"]
        assert st.health.status is HealthStatus.ERROR
        assert st.health.error and st.health.error.endswith(": output over 1 MiB, aborted (max_output_mib)"), st.health
        s = poller.session("leaf01")
        with pytest.raises(OutputTooLarge, match=r"^ip -j -4 route show table all: output over 1 MiB, aborted"):
            await s.run(ROUTES4)
        await wait_for(lambda: not dev.ours(), limit_s=60)  # yes(1) killed, not left writing into a closed pipe
        dev.set_mode("normal")
        assert (await s.run(ROUTES4)).exit_status == 0  # same connection, slot freed
    finally:
        await _stopped(poller, dev)


async def test_garbage_is_a_parse_error_and_leaves_nothing(device):
    dev = await device()
    poller = Poller(dev.inventory(**FAST, stream=False))
    try:
        assert (await poller.poll_once()).devices["leaf01"].health.status is HealthStatus.OK
        dev.set_mode("garbage")
        st = (await poller.poll_once()).devices["leaf01"]
        assert st.health.status is HealthStatus.STALE and "line 1" in (st.health.error or ""), st.health
    finally:
        await _stopped(poller, dev)


@pytest.mark.parametrize("forced", [False, True], ids=["login-shell", "forced-command"])
async def test_ip_monitor_ends_with_its_channel_and_with_the_collector(device, forced):
    dev = await device(forced=forced)
    poller = Poller(dev.inventory(**{**FAST, "command_timeout_s": 10.0}), interval_s=3600.0, stream_retry_s=0.5)
    try:
        await poller.start()
        s = poller.session("leaf01")
        # sshd starts the command before the collector hears the channel confirmed: wait for both
        await wait_for(lambda: s.stream_open and any("monitor" in ln for ln in dev.ours()), limit_s=30)
        assert s.stream_pty  # sshd gave the stream a pty: it hangs the command up when the channel closes
        first = {ln.split()[0] for ln in dev.ours() if "monitor" in ln}  # its pids
        s.stop_stream("test")  # the collector ends the stream (as when sessions are scarce)
        # that very process ends (the retry may already have started a new one: pids, not names)
        try:
            await wait_for(lambda: not first & {ln.split()[0] for ln in dev.ours() if "monitor" in ln}, limit_s=60)
        except AssertionError:
            raise AssertionError(f"still there: {first} in {dev.ours()}") from None
        await wait_for(lambda: any("monitor" in ln for ln in dev.ours()), limit_s=30)  # retried later
    finally:
        await _stopped(poller, dev)  # tool exit: the monitor and every sshd process of ours are gone


async def test_without_a_pty_the_stream_still_runs(device):
    dev = await device(permit_tty=False)
    poller = Poller(dev.inventory(**{**FAST, "command_timeout_s": 10.0}), interval_s=3600.0)
    try:
        await poller.start()
        await wait_for(lambda: any("monitor" in ln for ln in dev.ours()), limit_s=30)
        assert not poller.session("leaf01").stream_pty
    finally:
        await _stopped(poller, dev)  # no pty to hang it up: killed by the "signal" request on close
