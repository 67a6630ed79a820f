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
import time
from dataclasses import dataclass
from typing import AsyncIterator, Callable, Iterable

import asyncssh

from anycast_tui.collect.backoff import Backoff
from anycast_tui.collect.commands import COLLECTOR_LINES, Command
from anycast_tui.collect.inventory import DeviceConfig
from anycast_tui.collect.sshconfig import Resolved, Secrets, _Client, _create_private, resolve

log = logging.getLogger(__name__)


# AES-GCM first: asyncssh's chacha20-poly1305 builds cipher contexts per packet in
# Python and costs ~3x the CPU per command (bench/bench_poll.py); OpenSSH offers both.
ENCRYPTION_ALGS: tuple[str, ...] = (
    "aes128-gcm@openssh.com", "aes256-gcm@openssh.com", "chacha20-poly1305@openssh.com",
    "aes128-ctr", "aes192-ctr", "aes256-ctr",
)


# --------------------------------------------------------------------------- errors


class CollectError(Exception):
    """A device could not deliver a command's output; ``str()`` is one line for humans."""

    permanent = False

    def __init__(self, device: str, message: str, command: str | None = None):
        self.device = device
        self.command = command  # command id, when tied to one
        self.message = " ".join(message.split())  # one line, always
        super().__init__(self.message)


class ConnectError(CollectError):
    """TCP/SSH connection could not be made or was lost (retried with backoff)."""


class BackoffWait(ConnectError):
    """Not retrying yet: the last connection attempt failed recently.

    The message is the last failure's (stable from poll to poll); ``retry_in_s`` says when.
    """

    def __init__(self, device: str, message: str, retry_in_s: float):
        super().__init__(device, message)
        self.retry_in_s = retry_in_s


class AuthError(CollectError):
    permanent = True


class HostKeyError(CollectError):
    permanent = True


class CommandTimeout(CollectError):
    pass


class ChannelClosed(CollectError):
    """The channel or connection closed before the command's exit status arrived."""


class CommandFailed(CollectError):
    def __init__(self, device: str, message: str, command: str | None = None, exit_status: int | None = None,
                 stdout: str = ""):
        super().__init__(device, message, command)
        self.exit_status = exit_status
        self.stdout = stdout  # what the command printed before failing (vtysh prints up to a refused -c)


class CommandNotFound(CommandFailed):
    """Exit 127: the device has no such command."""


class CommandNotAllowed(CollectError):
    """A caller asked for a command outside the fixed read-only list (a bug, never sent)."""

    permanent = True


class _StaleConnection(Exception):
    """Internal: the connection was already closed when a channel was requested."""


# --------------------------------------------------------------------------- results


@dataclass(frozen=True, slots=True)
class CommandOutput:
    command: Command
    stdout: str
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
        self._channels = asyncio.Semaphore(cfg.max_channels)
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

    # ------------------------------------------------------------------ connecting

    async def _connection(self) -> asyncssh.SSHClientConnection:
        if self.permanent_error is not None:
            raise self.permanent_error
        if self.connected:
            assert self._conn is not None
            return self._conn
        async with self._connecting:
            if self.permanent_error is not None:
                raise self.permanent_error
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
                    self._retry_at = self._clock() + self.backoff.next_delay()
                raise
            self.backoff.reset()
            self._last_error = None
            return self._conn

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
        known_hosts = str(resolved.known_hosts)
        if not os.path.isfile(known_hosts):
            if not cfg.accept_new_host_key:
                raise HostKeyError(cfg.name, f"known_hosts file {known_hosts} not found; refusing to connect to "
                                   f"{self.where} without host key verification")
            _create_private(resolved.known_hosts)
        password = await self._password()
        client_keys = await self._client_keys(resolved)
        client = _Client(cfg.name, resolved.known_hosts, cfg.accept_new_host_key)
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
        """Forget a permanent error and the backoff (after the user fixed keys or known_hosts)."""
        self.permanent_error = None
        self._last_error = None
        self._retry_at = 0.0
        self.backoff.reset()

    def _drop(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            conn.abort()

    async def close(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            conn.close()
            try:
                async with asyncio.timeout(2.0):  # a peer that never answers the disconnect
                    await conn.wait_closed()
            except (asyncio.TimeoutError, TimeoutError):
                conn.abort()

    # ------------------------------------------------------------------ running

    async def run(self, cmd: Command) -> CommandOutput:
        """Run one command from the fixed list; raises a CollectError subclass on any failure."""
        try:
            check_allowed(cmd)
        except CommandNotAllowed as exc:
            raise CommandNotAllowed(self.cfg.name, exc.message, cmd.id) from None
        async with self._channels:
            conn = await self._connection()
            try:
                return await self._run(conn, cmd)
            except _StaleConnection:
                pass  # the server closed it while idle: reconnect once
            conn = await self._connection()
            try:
                return await self._run(conn, cmd)
            except _StaleConnection as exc:
                raise ChannelClosed(self.cfg.name, f"{cmd.id}: connection closed: {exc}", cmd.id) from None

    async def stream(self, cmd: Command) -> AsyncIterator[str]:
        """Lines of a long-running fixed command (``ip -o monitor``) on its own channel, as they arrive.

        The channel is not counted in ``max_channels``.  Ends with a CollectError:
        CommandNotFound / CommandFailed when the device refuses the command,
        ChannelClosed when the stream stops for any other reason.
        """
        try:
            check_allowed(cmd)
        except CommandNotAllowed as exc:
            raise CommandNotAllowed(self.cfg.name, exc.message, cmd.id) from None
        name = self.cfg.name
        conn = await self._connection()
        try:
            process = await conn.create_process(cmd.line, encoding="utf-8", errors="replace")
        except asyncssh.ChannelOpenError as exc:
            if conn.is_closed():
                self._drop()
            raise ChannelClosed(name, f"{cmd.id}: could not open a channel: {_describe(exc)}", cmd.id) from None
        except (asyncssh.Error, OSError) as exc:
            self._drop()
            raise ChannelClosed(name, f"{cmd.id}: connection lost: {_describe(exc)}", cmd.id) from None
        try:
            try:
                async for line in process.stdout:
                    yield line.rstrip("\n")
                async with asyncio.timeout(self.cfg.command_timeout_s):
                    proc = await process.wait(check=False)
            except (asyncssh.Error, OSError, asyncio.TimeoutError, TimeoutError) as exc:
                raise ChannelClosed(name, f"{cmd.id}: stream lost: {_describe(exc)}", cmd.id) from None
            stderr = _first_line(_text(proc.stderr))
            if proc.exit_status == 127:
                raise CommandNotFound(name, f"{cmd.id}: command not found on the device (exit 127): "
                                      f"{stderr or cmd.argv[0]}", cmd.id, 127)
            if proc.exit_status not in (None, 0):
                raise CommandFailed(name, f"{cmd.id}: exit {proc.exit_status}: {stderr or 'no error output'}",
                                    cmd.id, proc.exit_status)
            raise ChannelClosed(name, f"{cmd.id}: stream ended", cmd.id)
        finally:
            process.close()

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
        started_ms = int(time.time() * 1000)
        t0 = time.monotonic()
        chan: asyncssh.SSHClientChannel[bytes] | None = None
        done: _Collected | None = None
        try:
            async with asyncio.timeout(timeout):
                chan, session = await conn.create_session(_Collected, cmd.line, encoding=None)
                done = await session.finished
        except (asyncio.TimeoutError, TimeoutError):
            raise CommandTimeout(name, f"{cmd.id}: no answer within {timeout:g} s", cmd.id) from None
        except asyncssh.ChannelOpenError as exc:
            if conn.is_closed():
                self._drop()
                raise _StaleConnection(_describe(exc)) from None
            raise ChannelClosed(name, f"{cmd.id}: could not open a channel: {_describe(exc)}", cmd.id) from None
        except (asyncssh.Error, OSError) as exc:
            self._drop()
            raise ChannelClosed(name, f"{cmd.id}: connection lost: {_describe(exc)}", cmd.id) from None
        finally:
            if done is None and chan is not None:
                chan.close()  # timed out or cancelled: free the channel, keep the connection
        assert done is not None
        stdout = _text(b"".join(done.stdout))
        stderr = _text(b"".join(done.stderr))
        if done.exit_status is None:
            if conn.is_closed():
                self._drop()
            sig = f" (signal {done.exit_signal})" if done.exit_signal else ""
            raise ChannelClosed(name, f"{cmd.id}: channel closed before the command finished{sig}; "
                                f"{len(stdout)} characters discarded", cmd.id)
        if done.exit_status == 127:
            raise CommandNotFound(name, f"{cmd.id}: command not found on the device (exit 127): "
                                  f"{_first_line(stderr) or cmd.argv[0]}", cmd.id, 127)
        if done.exit_status != 0:
            why = _first_line(stderr) or "no error output"
            raise CommandFailed(name, f"{cmd.id}: exit {done.exit_status}: {why}", cmd.id, done.exit_status,
                                stdout)
        return CommandOutput(cmd, stdout, stderr, 0, started_ms, time.monotonic() - t0)


class _Collected(asyncssh.SSHClientSession[bytes]):
    """One command's channel: gathers stdout, stderr and the exit status until the channel closes.

    Lighter than asyncssh's SSHClientProcess (no stream readers, no redirection machinery): the
    poller opens tens of these a second, so their cost is most of an idle monitor's CPU.
    """

    def __init__(self) -> None:
        self.stdout: list[bytes] = []
        self.stderr: list[bytes] = []
        self.exit_status: int | None = None
        self.exit_signal: str | None = None
        self.finished: asyncio.Future[_Collected] = asyncio.get_running_loop().create_future()

    def data_received(self, data: bytes, datatype: asyncssh.DataType) -> None:
        (self.stderr if datatype == asyncssh.EXTENDED_DATA_STDERR else self.stdout).append(data)

    def exit_status_received(self, status: int) -> None:
        self.exit_status = status

    def exit_signal_received(self, signal: str, core_dumped: bool, msg: str, lang: str) -> None:
        self.exit_signal = signal

    def connection_lost(self, exc: Exception | None) -> None:
        # a lost connection ends the channel too: exit_status stays None and _run says so
        if not self.finished.done():
            self.finished.set_result(self)


def _text(data: bytes | str | None) -> str:
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
