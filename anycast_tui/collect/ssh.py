"""One persistent SSH connection per device (asyncssh), running only the fixed command list.

The connection is opened lazily and reopened after failures with exponential
backoff and jitter; authentication failures and host-key mismatches are
permanent (never retried: retrying cannot fix them and may lock the account).
Host keys are always verified against known_hosts (``accept_new_host_key``
records an unknown host's key, never a changed one); ~/.ssh/config, ProxyJump
chains and ssh-agent work as with ``ssh`` (see :mod:`.sshconfig`); connects of
all devices share one semaphore (``Inventory.max_connections``).  Every failure is a
:class:`CollectError` with a one-line message; passwords never appear in
messages, reprs or logs.
"""

from __future__ import annotations

import asyncio
import logging
import os
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import AsyncIterator, Callable, Iterable

import asyncssh

from anycast_tui.collect.backoff import Backoff
from anycast_tui.collect.commands import COLLECTOR_LINES, FRR_RIB, Command
from anycast_tui.collect.errors import (
    AuthError,
    BackoffWait,
    ChannelClosed,
    CollectError,
    CommandFailed,
    CommandNotAllowed,
    CommandNotFound,
    CommandTimeout,
    ConnectError,
    HostKeyError,
    OutputTooLarge,
    StreamOff,
)
from anycast_tui.collect.inventory import DeviceConfig
from anycast_tui.collect.sshconfig import HostKeyClient, Resolved, Secrets, resolve
from anycast_tui.parse.longtext import LongText, Text

log = logging.getLogger(__name__)


# AES-GCM first: asyncssh's chacha20-poly1305 builds cipher contexts per packet in
# Python and costs ~3x the CPU per command (bench/bench_poll.py); OpenSSH offers both.
ENCRYPTION_ALGS: tuple[str, ...] = (
    "aes128-gcm@openssh.com", "aes256-gcm@openssh.com", "chacha20-poly1305@openssh.com",
    "aes128-ctr", "aes192-ctr", "aes256-ctr",
)


# --------------------------------------------------------------------------- errors
# CollectError and its kinds live in collect/errors.py (sshconfig raises AuthError too); imported above.


class _StaleConnection(Exception):
    """Internal: the connection was already closed when a channel was requested."""


# --------------------------------------------------------------------------- results


@dataclass(frozen=True, slots=True)
class CommandOutput:
    command: Command
    stdout: Text  # a LongText (an anonymous file, read a block at a time) when over SPOOL_BYTES
    stderr: str
    exit_status: int
    started_ms: int
    duration_s: float


def _first_line(text: str, limit: int = 120) -> str:
    for line in text.splitlines():
        if line.strip():
            line = line.strip()
            return line if len(line) <= limit else line[:limit] + "…"
    return ""


def check_allowed(cmd: Command) -> None:
    """Refuse anything but the fixed list and validated ``route get`` commands."""
    if cmd.line in COLLECTOR_LINES:
        return
    if cmd.id == "route_get" and cmd.argv[:4] == ("ip", "-j", "route", "get"):
        return
    raise CommandNotAllowed("-", f"command not in the fixed read-only list: {cmd.id}")


# --------------------------------------------------------------------------- session


def password_login(cfg: DeviceConfig) -> str:
    """``user@name host:port``: whose password :class:`Secrets` asks (once per login)."""
    return f"{cfg.user or ''}@{cfg.name} {cfg.address}".lstrip("@")


class SSHSession:
    """The persistent connection to one device; safe to use from many tasks at once."""

    def __init__(self, cfg: DeviceConfig, *, backoff: Backoff | None = None,
                 clock: Callable[[], float] = time.monotonic, secrets: Secrets | None = None,
                 connect_limit: asyncio.Semaphore | None = None):
        self.cfg = cfg
        self.secrets = secrets or Secrets()
        self.resolved: Resolved | None = None
        self._connect_limit = connect_limit
        self.backoff = backoff or Backoff(cfg.backoff_base_s, cfg.backoff_max_s)
        self._clock = clock
        self._conn: asyncssh.SSHClientConnection | None = None
        self._connecting = asyncio.Lock()
        self._busy = 0  # command channels open or being opened
        self._freed = asyncio.Event()  # set when a channel ends or a command leaves its slot
        self._abandoned: set[_Collected] = set()  # given-up commands whose channel sshd has not closed yet
        self._stream_chan: asyncssh.SSHClientChannel[bytes] | None = None
        self._stream_lines: _Lines | None = None
        self._reapers: set[asyncio.Task[None]] = set()  # given-up channels being killed until their process ends
        self._stream_stopped: str | None = None  # why the stream was closed to free its slot
        self._stream_pty = True  # False once the server refused the stream a pty
        self.session_limit: int | None = None  # session channels sshd allows per connection, once seen
        self._retry_at = 0.0
        self._last_error: CollectError | None = None
        self.permanent_error: CollectError | None = None
        self.connects = 0  # connection attempts made (for tests and status)

    def __repr__(self) -> str:
        state = "connected" if self.connected else ("failed" if self.permanent_error else "idle")
        return f"SSHSession({self.cfg.name!r}, {self.where}, {state})"

    @property
    def where(self) -> str:
        return f"{self.cfg.name} {self.cfg.address}"

    @property
    def connected(self) -> bool:
        return self._conn is not None and not self._conn.is_closed()

    @property
    def stream_open(self) -> bool:
        """The ``ip monitor`` stream's channel is open (its command was started and sshd confirmed it)."""
        return self._stream_chan is not None

    @property
    def stream_pty(self) -> bool:
        """The stream asks for a pty (False once sshd refused one: PermitTTY no, no-pty)."""
        return self._stream_pty

    # ------------------------------------------------------------------ connecting

    async def _connection(self) -> asyncssh.SSHClientConnection:
        if self.permanent_error is not None:
            raise self._permanent()
        if self.connected:
            assert self._conn is not None
            return self._conn
        async with self._connecting:
            if self.permanent_error is not None:
                raise self._permanent()
            if self.connected:
                assert self._conn is not None
                return self._conn
            now = self._clock()
            if now < self._retry_at and self._last_error is not None:
                raise BackoffWait(self.cfg.name, self._last_error.message, self._retry_at - now)
            try:
                self._conn = await self._connect()
            except CollectError as exc:
                self._last_error = exc
                if exc.permanent:
                    self.permanent_error = exc
                    tail = "" if exc.message.endswith("not retrying") else "; not retrying"
                    log.warning("%s: %s%s", self.cfg.name, exc.message, tail)
                else:
                    # Backoff's factor**failures overflows a float after ~1000 failures (a device down for
                    # a day): past 64 the delay is long saturated at max_s, so count no further.
                    self.backoff.failures = min(self.backoff.failures, 64)
                    self._retry_at = self._clock() + self.backoff.next_delay()
                raise
            self.backoff.reset()
            self._last_error = None
            return self._conn

    def _permanent(self) -> CollectError:
        """The permanent error, to raise again without its last traceback.

        Raising one exception object on every poll chains each raise's traceback (and the frames it
        holds) onto the last: ~2 KB more per poll of a device failing auth, never freed (issue 16).
        """
        assert self.permanent_error is not None
        return self.permanent_error.with_traceback(None)

    async def _connect(self) -> asyncssh.SSHClientConnection:
        if self._connect_limit is None:
            return await self._connect_now()
        async with self._connect_limit:  # bounded connects in flight, all devices together
            return await self._connect_now()

    async def _connect_now(self) -> asyncssh.SSHClientConnection:
        cfg = self.cfg
        self.connects += 1
        resolved = resolve(cfg)
        self.resolved = resolved
        known_hosts: str | tuple[list[object], list[object], list[object]] = str(resolved.known_hosts)
        if not os.path.isfile(known_hosts):
            if not cfg.accept_new_host_key:
                raise HostKeyError(cfg.name, f"known_hosts file {known_hosts} not found; refusing to connect to "
                                   f"{self.where} without host key verification")
            known_hosts = ([], [], [])  # nothing trusted yet; the file is made once a connection succeeded
        password = await self._password()
        client_keys = await self._client_keys(resolved)
        client = HostKeyClient(cfg.name, resolved.known_hosts, cfg.accept_new_host_key)
        try:
            async with asyncio.timeout(cfg.connect_timeout_s + 1.0):
                conn = await asyncssh.connect(
                    cfg.host, cfg.port or (), username=cfg.user or (), known_hosts=known_hosts,
                    client_factory=lambda: client,
                    client_keys=client_keys, password=password,
                    agent_path=() if cfg.use_agent else None,
                    config=resolved.config_paths or None, ignore_encrypted=True,
                    tunnel=cfg.jump if cfg.jump else (),
                    connect_timeout=cfg.connect_timeout_s,
                    kbdint_auth=False, gss_auth=False, host_based_auth=False,
                    preferred_auth="publickey,password" if password else "publickey",
                    keepalive_interval=30.0, keepalive_count_max=3, encryption_algs=ENCRYPTION_ALGS,
                )
        except asyncssh.HostKeyNotVerifiable:
            raise HostKeyError(cfg.name, client.refusal(self.where)) from None
        except asyncssh.PermissionDenied:
            how = "publickey" + (", password" if password else "")
            raise AuthError(cfg.name, f"authentication failed for {resolved.user}@{self.where} ({how}); "
                            "not retrying") from None
        except (asyncio.TimeoutError, TimeoutError):
            raise ConnectError(cfg.name, f"{self.where}: connect timed out after {cfg.connect_timeout_s:g} s") \
                from None
        except ConnectionRefusedError:
            raise ConnectError(cfg.name, f"{self.where}: connection refused") from None
        except (OSError, asyncssh.Error) as exc:
            raise ConnectError(cfg.name, f"{self.where}: {_describe(exc)}") from None
        finally:
            password = None
        try:
            client.record()
        except OSError as exc:
            conn.abort()
            raise HostKeyError(cfg.name, f"cannot record the host key of {self.where} in {resolved.known_hosts}: "
                               f"{exc.strerror or exc}; not retrying") from None
        log.debug("%s: connected", self.where)
        return conn

    async def _password(self) -> str | None:
        cfg = self.cfg
        if cfg.password_env:
            password = os.environ.get(cfg.password_env)
            if password is None:
                raise AuthError(cfg.name, f"password environment variable {cfg.password_env} is not set "
                                f"for {self.where}; not retrying")
            return password
        if cfg.ask_password:
            password = await self.secrets.password(password_login(cfg))
            if password is None:
                raise AuthError(cfg.name, f"no password given for {self.where}; not retrying")
            return password
        return None

    async def _client_keys(self, resolved: "Resolved") -> list[asyncssh.SSHKey] | tuple[()]:
        """Keys from key_path, else ~/.ssh/config IdentityFile, else the default files; asked passphrases once."""
        cfg = self.cfg
        if cfg.key_path is not None:
            if not cfg.key_path.is_file():
                raise AuthError(cfg.name, f"private key {cfg.key_path} not found for {self.where}; not retrying")
            paths = [cfg.key_path]
        else:
            paths = [p for p in resolved.identity_files if p.is_file()]
            if not paths:
                return ()  # asyncssh's defaults (unencrypted default keys) and the agent
        keys: list[asyncssh.SSHKey] = []
        for path in paths:
            key = await self.secrets.load_key(path, cfg.name)
            if key is not None:
                keys.append(key)
        if not keys and cfg.key_path is not None and not cfg.use_agent:
            raise AuthError(cfg.name, f"private key {cfg.key_path} is encrypted and no passphrase was given; "
                            "not retrying")
        return keys

    def reset(self) -> None:
        """Forget a permanent error, the backoff and the session limit learned from sshd."""
        self.permanent_error = None
        self._last_error = None
        self._retry_at = 0.0
        self.session_limit = None
        self.backoff.reset()

    def _drop(self) -> None:
        conn, self._conn = self._conn, None
        self._abandoned.clear()  # their slots went with the connection
        self._freed.set()
        if conn is not None:
            conn.abort()

    async def close(self) -> None:
        if self._reapers:  # given-up commands are killed before the connection goes: without a pty nothing else ends them
            await asyncio.wait(set(self._reapers), timeout=REAP_S + 1.0)
        conn, self._conn = self._conn, None
        self._abandoned.clear()
        self._freed.set()
        if conn is not None:
            conn.close()
            try:
                async with asyncio.timeout(2.0):  # a peer that never answers the disconnect
                    await conn.wait_closed()
            except (asyncio.TimeoutError, TimeoutError):
                conn.abort()

    # ------------------------------------------------------------------ channels
    #
    # sshd gives each connection MaxSessions session channels (10 by default; operators set 1), and frees a
    # slot only once the channel's process has exited: a command we gave up on keeps its slot until it ends.
    # Commands therefore wait for a free slot here (max_channels, within what sshd was seen to allow), a
    # command given up on is killed and closed and counted until sshd closes it, and a connection whose
    # slots such commands hold is replaced.

    def _room(self) -> int:
        """How many command channels may be open at once now."""
        room = self.cfg.max_channels
        if self.session_limit is not None:
            room = min(room, self.session_limit - len(self._abandoned) - (self._stream_chan is not None))
        return room

    async def _slot(self) -> None:
        """Wait for a command slot; free one held by the stream or by abandoned commands when none can come."""
        while self._busy >= self._room():
            if self._busy == 0:  # no command of ours will free one
                if self._abandoned and self._reapers:  # being killed: their slots come back once they end
                    await asyncio.wait(set(self._reapers), return_when=asyncio.FIRST_COMPLETED)
                    continue
                if self._abandoned:
                    log.warning("%s: %d given-up command(s) still hold sshd's session slots; replacing the "
                                "connection", self.cfg.name, len(self._abandoned))
                    self._drop()
                    continue
                if self._stream_chan is not None:
                    self.stop_stream(f"sshd allows {self.session_limit} session per connection (MaxSessions), "
                                      "kept for the poll's commands")
                    continue
                break  # nothing to wait for (cannot happen: a learned limit is at least 1)
            self._freed.clear()
            await self._freed.wait()
        self._busy += 1

    def _release(self) -> None:
        self._busy -= 1
        self._freed.set()

    def _learn(self, others: int, exc: asyncssh.ChannelOpenError) -> None:
        """sshd refused a session while ``others`` of ours were open on the connection: that is its limit."""
        if self.session_limit is None or others < self.session_limit:
            self.session_limit = others
            log.info("%s: sshd refused a session channel (%s) with %d open: it allows %d per connection "
                     "(MaxSessions); commands take turns", self.cfg.name, _describe(exc), others, others)

    async def _open(self, conn: asyncssh.SSHClientConnection, cmd: Command,
                    factory: Callable[[], asyncssh.SSHClientSession[bytes]], **kw: object,
                    ) -> tuple[asyncssh.SSHClientChannel[bytes], asyncssh.SSHClientSession[bytes]]:
        """A session channel for ``cmd``; sshd frees a closed channel's slot a moment later, so retry a little."""
        delay = 0.005
        while True:
            made: list[_Channel] = []

            def make() -> asyncssh.SSHClientSession[bytes]:
                session = factory()
                assert isinstance(session, _Channel)
                session.pty = "term_type" in kw  # asked for one: asyncssh fails the open if sshd refuses
                made.append(session)
                return session

            opened = False
            try:
                chan, session = await conn.create_session(make, cmd.line, encoding=None,  # type: ignore[arg-type]
                                                          **kw)
                opened = True
                return chan, session
            except asyncssh.ChannelOpenError as exc:
                if conn.is_closed():
                    self._drop()
                    raise _StaleConnection(_describe(exc)) from None
                if exc.code == asyncssh.OPEN_REQUEST_PTY_FAILED:
                    raise
                others = self._busy - (factory is not _Lines) + len(self._abandoned) + (self._stream_chan is not None)
                if delay > 0.2:
                    if others > 0:
                        self._learn(others, exc)
                        raise _NoSlot() from None
                    raise ChannelClosed(
                        self.cfg.name, f"{cmd.id}: could not open a channel: {_describe(exc)}: sshd refused a "
                        "session with none of ours open on this connection: its MaxSessions (sshd_config, or a "
                        "Match block for this user) must be 1 or more", cmd.id) from None
                await asyncio.sleep(delay)
                delay *= 2
            finally:
                if not opened:
                    # given up (cancelled, timed out) or failed once the channel was open: its exec may already
                    # have reached sshd and nothing else holds the channel, so its process is ended here
                    for half in made:
                        self._abandon(half)

    def _abandon(self, session: "_Channel") -> None:
        """Give up on a command: kill its process until it ends, then close its channel; its slot counts as
        held until sshd closes the channel."""
        if session.ended or session.chan is None:
            return
        if isinstance(session, _Collected):
            session.drop()  # what it printed, and what it prints until the kill lands, is not kept
            self._abandoned.add(session)
            session.on_end = self._abandoned_ended
        if session.reaping:
            return
        session.reaping = True
        if session.pty:  # closing hangs the command up (sshd closes the pty): kill it and close at once
            _kill(session.chan)
            session.chan.close()
            return
        task = asyncio.get_running_loop().create_task(self._reap(session.chan, session))
        self._reapers.add(task)
        task.add_done_callback(self._reapers.discard)

    async def _reap(self, chan: asyncssh.SSHClientChannel[bytes], session: "_Channel") -> None:
        """Send SSH "signal" KILL (honoured by OpenSSH >= 7.9 for ordinary logins) until the process ends.

        Once is not enough: sshd signals the process group, which the command's process makes only a moment
        after sshd forked it, so a kill that follows the exec at once finds no group and is lost; without a
        pty, closing the channel does not end the process (issue 16).  A process that never ends (a forced
        command: sshd refuses to signal those) has its channel closed after ``REAP_S``.
        """
        try:
            for wait in REAP_WAITS:
                if not _kill(chan):
                    break  # the channel or the connection is already gone
                if await session.wait_ended(wait):
                    return
        finally:
            chan.close()

    def _abandoned_ended(self, session: "_Collected") -> None:
        self._abandoned.discard(session)
        self._freed.set()

    # ------------------------------------------------------------------ running

    async def run(self, cmd: Command) -> CommandOutput:
        """Run one command from the fixed list; raises a CollectError subclass on any failure."""
        try:
            check_allowed(cmd)
        except CommandNotAllowed as exc:
            raise CommandNotAllowed(self.cfg.name, exc.message, cmd.id) from None
        stale = False
        while True:
            await self._slot()
            try:
                conn = await self._connection()
                return await self._run(conn, cmd)
            except _NoSlot:
                continue  # sshd's limit is now known: wait for a slot within it
            except _StaleConnection as exc:
                if stale:
                    raise ChannelClosed(self.cfg.name, f"{cmd.id}: connection closed: {exc}", cmd.id) from None
                stale = True  # the server closed it while idle: reconnect once
            finally:
                self._release()

    async def stream(self, cmd: Command) -> AsyncIterator[str]:
        """Lines of a long-running fixed command (``ip -o monitor``) on its own channel, as they arrive.

        The channel takes one of sshd's session slots but not one of ``max_channels``.  It asks for a pty
        (raw output), so that sshd hangs the command up when the channel closes, whichever side closes it
        and whenever the tool exits; without one (the server refuses ptys) the command ends at its next
        write.  A line longer than ``STREAM_LINE_MAX`` ends the stream.  Where sshd allows one session
        per connection the stream is off: the poll needs that slot.

        Ends with a CollectError: CommandNotFound / CommandFailed when the device refuses the command,
        the line is too long or the stream is off, ChannelClosed when it stops for any other reason.
        """
        try:
            check_allowed(cmd)
        except CommandNotAllowed as exc:
            raise CommandNotAllowed(self.cfg.name, exc.message, cmd.id) from None
        name = self.cfg.name
        if self.session_limit is not None and self.session_limit <= 1:
            raise StreamOff(name, f"{cmd.id}: off: sshd allows {self.session_limit} session per connection "
                            "(MaxSessions), kept for the poll's commands; polling only (MaxSessions 2 or more "
                            "in sshd_config streams)", cmd.id)
        conn = await self._connection()
        pty: dict[str, object] = {"term_type": "dumb", "term_size": (0, 0),
                                  "term_modes": {asyncssh.PTY_OPOST: 0, asyncssh.PTY_ECHO: 0}}
        try:
            try:
                chan, lines = await self._open(conn, cmd, _Lines, **(pty if self._stream_pty else {}))
            except asyncssh.ChannelOpenError as exc:
                if exc.code != asyncssh.OPEN_REQUEST_PTY_FAILED:
                    raise
                self._stream_pty = False  # PermitTTY no, no-pty: the command then ends at its next write
                chan, lines = await self._open(conn, cmd, _Lines)
        except _NoSlot:
            if self.session_limit is not None and self.session_limit <= 1:
                raise StreamOff(name, f"{cmd.id}: off: sshd allows 1 session per connection (MaxSessions), kept "
                                "for the poll's commands; polling only", cmd.id) from None
            raise ChannelClosed(name, f"{cmd.id}: no free session channel (sshd MaxSessions {self.session_limit})",
                                cmd.id) from None
        except _StaleConnection as exc:
            raise ChannelClosed(name, f"{cmd.id}: connection closed: {exc}", cmd.id) from None
        except asyncssh.ChannelOpenError as exc:
            raise ChannelClosed(name, f"{cmd.id}: could not open a channel: {_describe(exc)}", cmd.id) from None
        except (asyncssh.Error, OSError) as exc:
            self._drop()
            raise ChannelClosed(name, f"{cmd.id}: connection lost: {_describe(exc)}", cmd.id) from None
        assert isinstance(lines, _Lines)
        self._stream_chan, self._stream_lines = chan, lines
        self._stream_stopped = None
        try:
            while (line := await lines.next()) is not None:
                yield line
            if self._stream_stopped is not None:
                raise StreamOff(name, f"{cmd.id}: off: {self._stream_stopped}; polling only", cmd.id)
            if lines.overflow:
                raise OutputTooLarge(name, f"{cmd.line}: line over {_size(STREAM_LINE_MAX)}, aborted", cmd.id)
            if lines.exit_status is None:
                raise ChannelClosed(name, f"{cmd.id}: stream lost" + (
                    f" (signal {lines.exit_signal})" if lines.exit_signal else ""), cmd.id)
            why = _first_line(_text(lines.stderr)) or lines.last
            if lines.exit_status == 127:
                raise CommandNotFound(name, f"{cmd.id}: command not found on the device (exit 127): "
                                      f"{why or cmd.argv[0]}", cmd.id, 127)
            if lines.exit_status != 0:
                raise CommandFailed(name, f"{cmd.id}: exit {lines.exit_status}: {why or 'no error output'}",
                                    cmd.id, lines.exit_status)
            raise ChannelClosed(name, f"{cmd.id}: stream ended", cmd.id)
        finally:
            if self._stream_chan is chan:
                self._stream_chan = self._stream_lines = None
                self._freed.set()
            self._abandon(lines)

    def stop_stream(self, why: str) -> None:
        """Close the stream's channel (its pty hangs the command up) to give its slot to the poll."""
        chan = self._stream_chan
        if chan is None:
            return
        log.info("%s: ip monitor off: %s; polling only", self.cfg.name, why)
        self._stream_stopped = why
        lines, self._stream_chan, self._stream_lines = self._stream_lines, None, None
        if lines is not None:
            self._abandon(lines)  # killed, then closed: its stream() ends when sshd closes the channel

    async def run_many(self, cmds: Iterable[Command]) -> dict[str, CommandOutput]:
        """Run commands on parallel channels (bounded by ``max_channels``); the first failure is raised."""
        cmds = list(cmds)
        for c in cmds:
            check_allowed(c)
        await self._connection()  # one connect (or one refusal) for all of them
        tasks = [asyncio.ensure_future(self.run(c)) for c in cmds]
        try:
            results = await asyncio.gather(*tasks)
        except BaseException:
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            raise
        return {c.id: r for c, r in zip(cmds, results)}

    async def _run(self, conn: asyncssh.SSHClientConnection, cmd: Command) -> CommandOutput:
        name, timeout = self.cfg.name, self.cfg.command_timeout_s
        limit = self.cfg.max_output_mib << 20
        started_ms = int(time.time() * 1000)
        t0 = time.monotonic()
        chan: asyncssh.SSHClientChannel[bytes] | None = None
        session: _Collected | None = None
        done: _Collected | None = None
        try:
            async with asyncio.timeout(timeout):
                chan, opened = await self._open(conn, cmd, lambda: _Collected(limit, self.cfg.spool_dir))
                assert isinstance(opened, _Collected)
                session = opened
                done = await session.finished
        except (asyncio.TimeoutError, TimeoutError):
            raise CommandTimeout(name, f"{cmd.id}: no answer within {timeout:g} s", cmd.id) from None
        except asyncssh.ChannelOpenError as exc:
            raise ChannelClosed(name, f"{cmd.id}: could not open a channel: {_describe(exc)}", cmd.id) from None
        except (asyncssh.Error, OSError) as exc:
            self._drop()
            raise ChannelClosed(name, f"{cmd.id}: connection lost: {_describe(exc)}", cmd.id) from None
        finally:
            if chan is not None and session is not None and (done is None or done.overflow):
                self._abandon(session)  # timed out, cancelled or flooding: end it, free its slot
        if done.spool_error is not None:
            raise OutputTooLarge(name, f"{cmd.line}: output over {_size(SPOOL_BYTES)} could not be kept on disk, "
                                 f"aborted: {done.spool_error} (spool_dir)", cmd.id)
        if done.overflow:
            raise OutputTooLarge(name, f"{cmd.line}: output over {_size(limit)}, aborted (max_output_mib)", cmd.id)
        stdout = done.take_stdout()
        stderr = _text(b"".join(done.stderr))
        if done.exit_status is None:
            if conn.is_closed():
                self._drop()
            sig = f" (signal {done.exit_signal})" if done.exit_signal else ""
            lost = f"{len(stdout)} characters" if isinstance(stdout, str) else f"{stdout.size} bytes"
            if isinstance(stdout, LongText):
                stdout.close()
            raise ChannelClosed(name, f"{cmd.id}: channel closed before the command finished{sig}; "
                                f"{lost} discarded", cmd.id)
        if done.exit_status != 0 and isinstance(stdout, LongText) and cmd.id != FRR_RIB.id:
            stdout.close()  # only FRR's RIB is read from a failed command (vtysh stops at a refused -c)
            stdout = ""
        if done.exit_status == 127:
            raise CommandNotFound(name, f"{cmd.id}: command not found on the device (exit 127): "
                                  f"{_first_line(stderr) or cmd.argv[0]}", cmd.id, 127)
        if done.exit_status != 0:
            why = _first_line(stderr) or "no error output"
            raise CommandFailed(name, f"{cmd.id}: exit {done.exit_status}: {why}", cmd.id, done.exit_status,
                                stdout)
        return CommandOutput(cmd, stdout, stderr, 0, started_ms, time.monotonic() - t0)


# a given-up command is sent KILL again after each wait until sshd closes its channel; then it is closed by us
REAP_WAITS: tuple[float, ...] = (0.05, 0.1, 0.2, 0.4, 0.8, 1.5)
REAP_S = sum(REAP_WAITS)


class _NoSlot(Exception):
    """Internal: sshd refused a session while others of ours were open (its limit is now known)."""


STDERR_MAX = 64 * 1024  # stderr kept per command (only its first line is ever shown)
# stdout longer than this goes to an anonymous file (parse.longtext) instead of memory: a full table's
# answer (200 MB for 500,000 4-way routes) is then never held in the process, only its parsed records
SPOOL_BYTES = 16 << 20


def spool_default() -> str:
    """Where long outputs are spooled without ``spool_dir``: ``/var/tmp`` (on disk by convention: ``/tmp``
    is often tmpfs, i.e. memory), else the system's temporary directory."""
    return "/var/tmp" if os.access("/var/tmp", os.W_OK | os.X_OK) else tempfile.gettempdir()


class _Channel(asyncssh.SSHClientSession[bytes]):
    """What every channel of ours records: the exit status or signal, and when sshd closed it (``ended``)."""

    exit_status: int | None = None
    exit_signal: str | None = None
    ended = False  # closed on both sides: sshd freed its session slot
    chan: asyncssh.SSHClientChannel[bytes] | None = None  # set as soon as sshd confirmed the channel open
    reaping = False  # given up: being killed until it ends
    pty = False  # the command runs on a pty: closing the channel hangs it up
    _ended_event: asyncio.Event | None = None

    def connection_made(self, chan: asyncssh.SSHClientChannel[bytes]) -> None:  # type: ignore[override]
        self.chan = chan

    def exit_status_received(self, status: int) -> None:
        self.exit_status = status

    def exit_signal_received(self, signal: str, core_dumped: bool, msg: str, lang: str) -> None:
        self.exit_signal = signal

    def connection_lost(self, exc: Exception | None) -> None:
        # a lost connection ends the channel too: exit_status stays None and the caller says so
        self.ended = True
        if self._ended_event is not None:
            self._ended_event.set()
        self._ended()

    async def wait_ended(self, timeout: float) -> bool:
        """Wait up to ``timeout`` s for sshd to close the channel; whether it did."""
        if not self.ended:
            if self._ended_event is None:
                self._ended_event = asyncio.Event()
            try:
                async with asyncio.timeout(timeout):
                    await self._ended_event.wait()
            except (asyncio.TimeoutError, TimeoutError):
                pass
        return self.ended

    def _ended(self) -> None:
        raise NotImplementedError


class _Collected(_Channel):
    """One command's channel: gathers stdout, stderr and the exit status until the channel closes.

    Lighter than asyncssh's SSHClientProcess (no stream readers, no redirection machinery): the
    poller opens tens of these a second, so their cost is most of an idle monitor's CPU.  More than
    ``limit`` bytes of stdout sets ``overflow``, drops what came and finishes at once (the caller
    kills the command and closes the channel).
    """

    def __init__(self, limit: int, spool_dir: Path | None = None) -> None:
        # one growing buffer, not a list of chunks: no join copy, and a large one is mmap'd by malloc and given
        # back to the system when freed (a heap of 32 KB chunks stays in the process's RSS after a flood)
        self.stdout = bytearray()
        self.long: LongText | None = None  # stdout once over SPOOL_BYTES: in an anonymous file
        self.spool_dir = spool_dir
        self.spool_error: str | None = None  # the file could not be made or written: the command is given up
        self.stderr: list[bytes] = []
        self.size = 0
        self.stderr_size = 0
        self.limit = limit
        self.overflow = False
        self.on_end: Callable[[_Collected], None] | None = None
        self.finished: asyncio.Future[_Collected] = asyncio.get_running_loop().create_future()

    def data_received(self, data: bytes, datatype: asyncssh.DataType) -> None:
        if self.overflow:
            return
        if datatype == asyncssh.EXTENDED_DATA_STDERR:
            if self.stderr_size < STDERR_MAX:
                self.stderr.append(data)
                self.stderr_size += len(data)
            return
        self.size += len(data)
        if self.size > self.limit:
            self._give_up()
            return
        if self.long is None and self.size <= SPOOL_BYTES:
            self.stdout += data
            return
        try:
            if self.long is None:
                self.long = LongText(self.spool_dir or spool_default())
                self.long.write(self.stdout)
                self.stdout = bytearray()
            self.long.write(data)
        except OSError as exc:
            self.spool_error = f"{exc.strerror or exc} ({exc.filename or self.spool_dir or spool_default()})"
            self._give_up()

    def _give_up(self) -> None:
        self.overflow = True
        self.stdout = bytearray()
        if self.long is not None:
            self.long.close()
            self.long = None
        if not self.finished.done():
            self.finished.set_result(self)

    def drop(self) -> None:
        self.overflow = True  # ignore what still comes
        self.stdout, self.stderr = bytearray(), []
        if self.long is not None:
            self.long.close()
            self.long = None

    def take_stdout(self) -> str | LongText:
        """The output: text, or a LongText when it was spooled (the caller owns it and closes it)."""
        if self.long is not None:
            out, self.long = self.long, None
            out.finish()
            return out
        data, self.stdout = self.stdout, bytearray()
        return _text(data)

    def _ended(self) -> None:
        if not self.finished.done():
            self.finished.set_result(self)
        if self.on_end is not None:
            self.on_end(self)
            self.on_end = None


STREAM_LINE_MAX = 1 << 20  # an ``ip -o monitor`` line is one route, link or nexthop: a few KB at most
STREAM_QUEUE = 4096  # lines read ahead of the consumer before the channel stops reading


class _Lines(_Channel):
    """A streaming command's channel: complete lines, a bounded partial line, a bounded read-ahead."""

    def __init__(self) -> None:
        self._queue: asyncio.Queue[str | None] = asyncio.Queue()
        self._partial = b""
        self._paused = False
        self.stderr = b""
        self.last = ""  # last non-empty line (a pty merges stderr into it)
        self.overflow = False

    def data_received(self, data: bytes, datatype: asyncssh.DataType) -> None:
        if self.overflow:
            return
        if datatype == asyncssh.EXTENDED_DATA_STDERR:
            self.stderr = (self.stderr + data)[-STDERR_MAX:]
            return
        *complete, rest = (self._partial + data).split(b"\n")
        self._partial = b""
        for raw in (*complete, rest):
            if len(raw) > STREAM_LINE_MAX:  # what is buffered stays under the cap plus one read
                self.overflow = True
                self._queue.put_nowait(None)
                return
        for raw in complete:
            line = _text(raw).rstrip("\r")
            if line.strip():
                self.last = line.strip()[:200]
            self._queue.put_nowait(line)
        self._partial = rest
        if self._queue.qsize() > STREAM_QUEUE and not self._paused and self.chan is not None:
            self._paused = True
            self.chan.pause_reading()

    async def next(self) -> str | None:
        """The next line; None once the stream ended (or overflowed)."""
        line = await self._queue.get()
        if self._paused and self._queue.qsize() < STREAM_QUEUE // 2 and self.chan is not None:
            self._paused = False
            self.chan.resume_reading()
        if line is None:
            self._queue.put_nowait(None)  # stays ended
        return line

    def _ended(self) -> None:
        self._queue.put_nowait(None)


def _kill(chan: asyncssh.SSHClientChannel[bytes]) -> bool:
    """Ask sshd to KILL the channel's command; False when the channel or its connection is gone."""
    try:
        chan.kill()
    except (asyncssh.Error, OSError):
        return False
    return True


def _size(n: int) -> str:
    return f"{n >> 20} MiB" if n >= 1 << 20 and n % (1 << 20) == 0 else f"{n} bytes"


def _text(data: bytes | bytearray | str | None) -> str:
    if data is None:
        return ""
    if isinstance(data, str):
        return data
    return data.decode("utf-8", errors="replace")


def _describe(exc: BaseException) -> str:
    if isinstance(exc, asyncssh.DisconnectError) and exc.reason:
        return exc.reason
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror.lower()
    return str(exc) or type(exc).__name__
