"""Embedded SSH server for simulated devices: one asyncssh listener per device on 127.0.0.1.

Each device has its own ed25519 host key; clients authenticate with one
authorized public key (and optionally a password read from the environment).
A session can only run an exec request, answered by the device's Handler with
the exact command line the client sent: no shell, no SFTP/SCP, no forwarding,
no filesystem.  :class:`Faults` injects delay, hangs, drops, garbage, auth
rejection and exit statuses for tests.
"""

from __future__ import annotations

import asyncio
import hmac
import inspect
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import AsyncIterator, Awaitable, Callable, Mapping

import asyncssh

from anycast_tui.collect.inventory import DeviceConfig, Inventory
from anycast_tui.model.types import Role

log = logging.getLogger(__name__)

GARBAGE = b"\x1b[1mgarbled\x1b[0m \xff\xfe <<< not the output you asked for >>>\n{\"dst\": [oops\n"


@dataclass
class CommandResult:
    stdout: str
    stderr: str = ""
    exit_status: int = 0


# A handler gets the exact command line sent and answers with a result, or with an async
# iterator of output lines for a streaming command (``ip -o monitor``): each line is sent as
# it comes; the command ends (exit 0) when the iterator does or the client closes the channel.
Handler = Callable[[str], "CommandResult | Awaitable[CommandResult] | AsyncIterator[str]"]


@dataclass
class Faults:
    """Misbehaviour of one device; changes apply to the next request."""

    delay_s: float = 0.0  # sleep before answering each command
    drop_after_bytes: int | None = None  # send this many bytes of stdout, then drop the TCP connection
    garbage: bool = False  # answer every command with garbage on stdout (exit 0)
    hang: bool = False  # never answer (until the client gives up)
    reject_auth: bool = False  # refuse every authentication
    exit_status: int | None = None  # override the handler's exit status
    auth_delay_s: float = 0.0  # think this long before accepting a public key (a slow login)


@dataclass
class Counters:
    connections: int = 0
    auth_attempts: int = 0  # authentication requests (key queries, signatures, passwords)
    auth_failures: int = 0
    commands: int = 0
    forwards: int = 0  # direct-tcpip channels opened (jump host)
    authenticating: int = 0  # public-key checks in progress (with auth_delay_s)
    streams: int = 0  # streaming commands started


def _write_private(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)
    os.chmod(path, 0o600)


class _Server(asyncssh.SSHServer):
    def __init__(self, ep: "DeviceEndpoint"):
        self._ep = ep
        self._conn: asyncssh.SSHServerConnection | None = None

    def connection_made(self, conn: asyncssh.SSHServerConnection) -> None:
        self._conn = conn
        self._ep._conns.add(conn)
        self._ep.counters.connections += 1

    def connection_lost(self, exc: Exception | None) -> None:
        if self._conn is not None:
            self._ep._conns.discard(self._conn)

    def begin_auth(self, username: str) -> bool:
        return True

    def public_key_auth_supported(self) -> bool:
        return True

    def validate_public_key(self, username: str, key: asyncssh.SSHKey) -> "bool | Awaitable[bool]":
        self._ep.counters.auth_attempts += 1
        ok = not self._ep.faults.reject_auth and key.public_data == self._ep.client_key.public_data
        if not ok:
            self._ep.counters.auth_failures += 1
        if self._ep.faults.auth_delay_s:
            return self._slowly(ok)
        return ok

    async def _slowly(self, ok: bool) -> bool:
        c = self._ep.counters
        c.authenticating += 1
        try:
            await asyncio.sleep(self._ep.faults.auth_delay_s)
        finally:
            c.authenticating -= 1
        return ok

    def password_auth_supported(self) -> bool:
        return self._ep.password_env is not None

    def validate_password(self, username: str, password: str) -> bool:
        self._ep.counters.auth_attempts += 1
        expected = os.environ.get(self._ep.password_env or "", "")
        ok = bool(expected) and not self._ep.faults.reject_auth and hmac.compare_digest(
            password.encode(), expected.encode())
        if not ok:
            self._ep.counters.auth_failures += 1
        return ok

    def kbdint_auth_supported(self) -> bool:
        return False

    def session_requested(self) -> "_Session":
        return _Session(self._ep)

    def connection_requested(self, dest_host: str, dest_port: int, orig_host: str, orig_port: int) -> bool:
        """direct-tcpip (a ProxyJump hop): only to the endpoint's ``forward_hosts``, refused otherwise."""
        if dest_host in self._ep.forward_hosts:
            self._ep.counters.forwards += 1
            return True
        raise asyncssh.ChannelOpenError(asyncssh.OPEN_ADMINISTRATIVELY_PROHIBITED,
                                        f"forwarding to {dest_host} is not permitted")


class DeviceEndpoint:
    """One simulated device's SSH listener."""

    def __init__(self, name: str, handler: Handler, *, host: str = "127.0.0.1", port: int = 0,
                 host_key: asyncssh.SSHKey | None = None, client_key: asyncssh.SSHKey,
                 password_env: str | None = None, faults: Faults | None = None,
                 forward_hosts: frozenset[str] = frozenset()):
        self.name = name
        self.forward_hosts = forward_hosts  # direct-tcpip destinations allowed (a jump host: {"127.0.0.1"})
        self.handler = handler
        self.host = host
        self.port = port
        self.host_key = host_key or asyncssh.generate_private_key("ssh-ed25519")
        self.client_key = client_key
        self.password_env = password_env
        self.faults = faults or Faults()
        self.counters = Counters()
        self._acceptor: asyncssh.SSHAcceptor | None = None
        self._conns: set[asyncssh.SSHServerConnection] = set()

    def __repr__(self) -> str:
        return f"DeviceEndpoint({self.name!r}, {self.host}:{self.port}, running={self.running})"

    @property
    def running(self) -> bool:
        return self._acceptor is not None

    async def start(self) -> None:
        """Listen (again); reuses the previous port when it is still free."""
        if self._acceptor is not None:
            return
        try:
            self._acceptor = await self._listen(self.port)
        except OSError:
            if not self.port:
                raise
            self._acceptor = await self._listen(0)
        self.port = self._acceptor.sockets[0].getsockname()[1]

    async def _listen(self, port: int) -> asyncssh.SSHAcceptor:
        return await asyncssh.create_server(
            lambda: _Server(self), self.host, port,
            server_host_keys=[self.host_key], encoding=None,
            allow_pty=False, x11_forwarding=False, agent_forwarding=False, allow_scp=False,
            sftp_factory=None, config=None, reuse_address=True, login_timeout=10.0,
            line_editor=False,  # no pty is ever allowed, so the editor layer would only cost time
        )

    async def stop(self) -> None:
        """Stop listening and drop every open connection: clients then see connection refused."""
        acceptor, self._acceptor = self._acceptor, None
        if acceptor is not None:
            acceptor.close()
            await acceptor.wait_closed()
        for conn in list(self._conns):
            conn.abort()
        self._conns.clear()

    def known_hosts_line(self) -> str:
        where = self.host if self.port == 22 else f"[{self.host}]:{self.port}"
        return f"{where} {self.host_key.export_public_key('openssh').decode().strip()}"

    def _start(self, command: str) -> object:
        try:
            return self.handler(command)
        except Exception as exc:  # a broken handler is a device bug, not a server crash
            log.warning("handler of %s failed on %r: %s", self.name, command, exc)
            return CommandResult("", f"internal error: {type(exc).__name__}\n", 1)

    async def _finish(self, command: str, res: object) -> "CommandResult | AsyncIterator[str]":
        try:
            if inspect.isawaitable(res):
                res = await res
            return res  # type: ignore[return-value]
        except Exception as exc:
            log.warning("handler of %s failed on %r: %s", self.name, command, exc)
            return CommandResult("", f"internal error: {type(exc).__name__}\n", 1)


class _Session(asyncssh.SSHServerSession):  # type: ignore[type-arg]
    """One session channel: an exec request, answered by the endpoint's handler.

    A handler's plain result is sent from the channel's own callback (no task, no stream objects: a poll
    asks many short commands, and this is what the demo's idle CPU is made of); a delay, an awaitable
    answer or a streaming command runs as a task.
    """

    def __init__(self, ep: DeviceEndpoint):
        self._ep = ep
        self._chan: asyncssh.SSHServerChannel | None = None  # type: ignore[type-arg]
        self._command: str | None = None
        self._task: asyncio.Future[None] | None = None
        self._lost = False
        self._gone: asyncio.Future[None] | None = None  # done when the channel is closed (streams wait on it)
        self._writable: asyncio.Event | None = None  # cleared while the channel's send buffer is full

    # -- asyncssh callbacks

    def connection_made(self, chan: asyncssh.SSHServerChannel) -> None:  # type: ignore[type-arg]
        self._chan = chan

    def shell_requested(self) -> bool:
        return True  # refused with a message once started

    def subsystem_requested(self, subsystem: str) -> bool:
        return True  # likewise

    def exec_requested(self, command: str) -> bool:
        self._command = command
        return True

    def eof_received(self) -> bool:
        return True  # the client's stdin ended: keep answering

    def pause_writing(self) -> None:
        if self._writable is None:
            self._writable = asyncio.Event()
        self._writable.clear()

    def resume_writing(self) -> None:
        if self._writable is not None:
            self._writable.set()

    def connection_lost(self, exc: Exception | None) -> None:
        self._lost = True
        if self._gone is not None and not self._gone.done():
            self._gone.set_result(None)
        if self._writable is not None:
            self._writable.set()

    def session_started(self) -> None:
        chan = self._chan
        assert chan is not None
        if self._command is None:  # shell or subsystem request
            self._guard(lambda: (chan.write_stderr(b"only exec requests are served here\n"), chan.exit(1)))
            return
        ep = self._ep
        ep.counters.commands += 1
        f = ep.faults
        if f.hang:
            return  # never answer: the client gives up and closes the channel
        if f.delay_s:
            self._spawn(self._later(f.delay_s))
        else:
            self._answer()

    # -- answering

    def _guard(self, fn: Callable[[], object]) -> None:
        try:
            fn()
        except (asyncssh.Error, ConnectionError, BrokenPipeError):
            pass  # the client went away

    def _spawn(self, coro: Awaitable[None]) -> None:
        self._task = asyncio.ensure_future(self._guarded(coro))

    async def _guarded(self, coro: Awaitable[None]) -> None:
        chan = self._chan
        assert chan is not None
        try:
            await coro
        except (asyncssh.Error, ConnectionError, BrokenPipeError):
            pass  # the client went away
        except Exception:
            log.exception("serving %r on %s failed", self._command, self._ep.name)
        finally:
            if not chan.is_closing():
                chan.close()

    async def _later(self, delay_s: float) -> None:
        await asyncio.sleep(delay_s)
        if not self._lost:
            self._answer()

    def _answer(self) -> None:
        ep, command = self._ep, self._command
        assert command is not None
        if ep.faults.garbage:
            res: object = CommandResult(GARBAGE.decode("utf-8", "surrogateescape"))
        else:
            res = ep._start(command)
        if isinstance(res, CommandResult) and ep.faults.drop_after_bytes is None:
            self._guard(lambda: self._reply(res))  # type: ignore[arg-type]
        else:
            self._spawn(self._answer_later(res))

    async def _answer_later(self, res: object) -> None:
        ep, chan = self._ep, self._chan
        assert chan is not None and self._command is not None
        res = await ep._finish(self._command, res)
        if hasattr(res, "__aiter__"):
            await self._stream(res)  # type: ignore[arg-type]
            return
        assert isinstance(res, CommandResult)
        n = ep.faults.drop_after_bytes
        if n is not None:
            chan.write(res.stdout.encode("utf-8", "surrogateescape")[:n])
            await self._drain()
            chan.get_connection().abort()
            return
        self._reply(res)

    def _reply(self, result: CommandResult) -> None:
        chan, f = self._chan, self._ep.faults
        assert chan is not None
        out = result.stdout.encode("utf-8", "surrogateescape")
        if out:
            chan.write(out)
        if result.stderr:
            chan.write_stderr(result.stderr.encode())
        chan.exit(f.exit_status if f.exit_status is not None else result.exit_status)

    async def _drain(self) -> None:
        if self._writable is not None:
            await self._writable.wait()
        if self._lost:
            raise BrokenPipeError("the channel closed")

    async def _stream(self, lines: AsyncIterator[str]) -> None:
        """Send each line as it comes; stop when the client closes the channel or the iterator ends."""
        ep, chan = self._ep, self._chan
        assert chan is not None
        ep.counters.streams += 1
        self._gone = asyncio.get_running_loop().create_future()
        if self._lost:
            self._gone.set_result(None)
        it = lines.__aiter__()
        try:
            while True:
                nxt = asyncio.ensure_future(it.__anext__())
                done, _ = await asyncio.wait({nxt, self._gone}, return_when=asyncio.FIRST_COMPLETED)
                if nxt not in done:
                    nxt.cancel()
                    await asyncio.gather(nxt, return_exceptions=True)
                    return
                try:
                    line = nxt.result()
                except StopAsyncIteration:
                    break
                if ep.faults.hang or ep.faults.drop_after_bytes is not None:
                    chan.get_connection().abort()
                    return
                chan.write(line.encode("utf-8", "surrogateescape") + b"\n")
                await self._drain()
            chan.exit(0)
        finally:
            aclose = getattr(it, "aclose", None)
            if aclose is not None:
                await aclose()


class SSHFarm:
    """Many simulated devices, each with its own listener; keys and known_hosts live in ``workdir``."""

    def __init__(self, handlers: Mapping[str, Handler], *, host: str = "127.0.0.1", workdir: Path,
                 user: str = "atui", password_env: str | None = None):
        self.host = host
        self.user = user
        self.workdir = Path(workdir)
        self.client_key = asyncssh.generate_private_key("ssh-ed25519")
        self.client_key_path = self.workdir / "client_ed25519"
        self.known_hosts_path = self.workdir / "known_hosts"
        self.endpoints: dict[str, DeviceEndpoint] = {
            name: DeviceEndpoint(name, h, host=host, client_key=self.client_key, password_env=password_env)
            for name, h in handlers.items()
        }

    async def start(self) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        _write_private(self.client_key_path, self.client_key.export_private_key("openssh"))
        _write_private(self.client_key_path.with_suffix(".pub"), self.client_key.export_public_key("openssh"))
        for name, ep in self.endpoints.items():
            _write_private(self.workdir / "hostkeys" / name, ep.host_key.export_private_key("openssh"))
        await asyncio.gather(*(ep.start() for ep in self.endpoints.values()))
        self.write_known_hosts()

    async def stop(self) -> None:
        await asyncio.gather(*(ep.stop() for ep in self.endpoints.values()))

    async def __aenter__(self) -> "SSHFarm":
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    def write_known_hosts(self) -> None:
        """(Re)write known_hosts from the endpoints' current ports and host keys."""
        text = "".join(ep.known_hosts_line() + "\n" for ep in self.endpoints.values())
        _write_private(self.known_hosts_path, text.encode())

    def inventory(self, roles: Mapping[str, Role] | None = None, platform: str = "sim", *,
                  poll_interval_s: float = 1.0, anycast_prefixes: tuple[str, ...] = ("192.0.2.53/32",),
                  **device_settings: object) -> Inventory:
        """An Inventory reaching every endpoint; ``device_settings`` override DeviceConfig fields."""
        roles = roles or {}
        base: dict[str, object] = {"platform": platform, "user": self.user, "key_path": self.client_key_path,
                                   "known_hosts": self.known_hosts_path, **device_settings}
        devices = tuple(
            DeviceConfig(name=name, role=roles.get(name, Role.OTHER), host=ep.host, port=ep.port,
                         **base)  # type: ignore[arg-type]
            for name, ep in self.endpoints.items()
        )
        return Inventory(devices, poll_interval_s, anycast_prefixes)
