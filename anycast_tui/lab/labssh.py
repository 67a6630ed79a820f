"""SSH into the lab's namespaces: one asyncssh endpoint per device on 127.0.0.1.

One small daemon (``python3 -m anycast_tui.lab.labssh STATE_DIR``) serves every
device of a lab, each on its own port with its own ed25519 host key.  A client
authenticates with the lab's one client key.  An exec request is run only if it
is a line of the fixed read-only list (``commands.COLLECTOR_LINES``, else
``ALLOWED_LINES``) or a well-formed ``ip -j route get``; it runs as ``nsenter --net=/run/netns/NS argv``
(an argv list, never a shell).  nsenter joins only the network namespace,
which is all these commands read (netlink and /proc/sys/net give the same bytes
as under ``ip netns exec``), and costs a quarter less per command than ``ip
netns exec`` (which also makes a mount namespace and remounts /sys): with 7
commands per device per second that is most of the daemon's CPU.  Shells, subsystems, forwarding and PTYs are refused.

Files in STATE_DIR: ``ssh.json`` (input: devices and namespaces), ``hostkeys/``,
``id_ed25519`` (+ ``.pub``), ``ssh_ports.json`` (written by the daemon once it
listens), ``labssh.pid`` and ``labssh.log``.
"""

from __future__ import annotations

import asyncio
import json
import os
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path

import asyncssh

from anycast_tui.collect import commands as _commands
from anycast_tui.collect.commands import route_get

# Every line the SSH collector may send (the poll set, ``ip -V``, ``ip -o monitor``, FRR RIB, flow
# sources) when that list exists, else the poll set; never anything that writes.
LINES: frozenset[str] = _commands.COLLECTOR_LINES

COMMAND_TIMEOUT_S = 10.0
MAX_OUTPUT = 16 * 1024 * 1024


def _write_private(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)


def allowed_argv(line: str) -> list[str] | None:
    """argv for an allowed command line, else None."""
    if line in LINES:
        return shlex.split(line)
    try:
        argv = shlex.split(line)
    except ValueError:
        return None
    if argv[:5] != ["ip", "-j", "route", "get", argv[4] if len(argv) > 4 else ""] or len(argv) < 5:
        return None
    opts = dict(zip(argv[5::2], argv[6::2]))
    if len(argv[5:]) % 2 or set(opts) - {"from", "iif", "ipproto", "sport", "dport"}:
        return None
    try:
        cmd = route_get(argv[4], src=opts.get("from"), iif=opts.get("iif"), proto=opts.get("ipproto"),
                        sport=int(opts["sport"]) if "sport" in opts else None,
                        dport=int(opts["dport"]) if "dport" in opts else None)
    except ValueError:
        return None
    return list(cmd.argv) if list(cmd.argv) == argv else None


class _Server(asyncssh.SSHServer):
    def __init__(self, client_key: asyncssh.SSHKey):
        self._key = client_key

    def begin_auth(self, username: str) -> bool:
        return True

    def public_key_auth_supported(self) -> bool:
        return True

    def validate_public_key(self, username: str, key: asyncssh.SSHKey) -> bool:
        return key.public_data == self._key.public_data


def streaming(argv: list[str]) -> bool:
    """Commands that run until the client closes the channel (``ip -o monitor``): no timeout."""
    return len(argv) > 1 and argv[0] == "ip" and "monitor" in argv


async def _pump(src: asyncio.StreamReader, dst: asyncssh.SSHWriter, limit: int) -> None:
    sent = 0
    while chunk := await src.read(65536):
        if sent < limit:
            dst.write(chunk[: limit - sent])
            sent += len(chunk)
            await dst.drain()


def _process_factory(ns: str, vty: str | None):
    async def handle(process: asyncssh.SSHServerProcess) -> None:
        proc: asyncio.subprocess.Process | None = None
        try:
            argv = allowed_argv(process.command or "")
            if argv is None:
                process.stderr.write(b"lab: command not allowed (read-only list only)\n")
                process.exit(126)
                return
            if argv[0] == "vtysh" and vty:  # this device's FRR, not the (absent) system one
                argv = ["vtysh", "--vty_socket", vty, *argv[1:]]
            proc = await asyncio.create_subprocess_exec(
                "nsenter", f"--net=/run/netns/{ns}", *argv, stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE, stderr=subprocess.PIPE)
            assert proc.stdout is not None and proc.stderr is not None
            work = asyncio.ensure_future(asyncio.gather(_pump(proc.stdout, process.stdout, MAX_OUTPUT),
                                                        _pump(proc.stderr, process.stderr, 65536), proc.wait()))
            closed = asyncio.ensure_future(process.channel.wait_closed())
            done, _ = await asyncio.wait({work, closed}, timeout=None if streaming(argv) else COMMAND_TIMEOUT_S,
                                         return_when=asyncio.FIRST_COMPLETED)
            closed.cancel()
            if work not in done:
                work.cancel()
                if not done:  # timed out; else the client went away
                    process.stderr.write(b"lab: command timed out\n")
                    process.exit(124)
                return
            work.result()
            process.exit(proc.returncode or 0)
        except (asyncssh.Error, ConnectionError, BrokenPipeError):
            pass
        finally:
            if proc is not None and proc.returncode is None:
                proc.kill()
                await proc.wait()
            if not process.channel.is_closing():
                process.close()

    return handle


async def _serve(state_dir: Path) -> None:
    spec = json.loads((state_dir / "ssh.json").read_text())
    client_key = asyncssh.read_private_key(str(state_dir / "id_ed25519"))
    ports: dict[str, int] = {}
    acceptors = []
    for dev in spec["devices"]:
        host_key = asyncssh.read_private_key(str(state_dir / "hostkeys" / dev["name"]))
        acc = await asyncssh.create_server(
            lambda: _Server(client_key), "127.0.0.1", int(dev.get("port", 0)),
            server_host_keys=[host_key], process_factory=_process_factory(dev["ns"], dev.get("vty")), encoding=None,
            allow_pty=False, x11_forwarding=False, agent_forwarding=False, allow_scp=False,
            sftp_factory=None, config=None, reuse_address=True, login_timeout=10.0)
        acceptors.append(acc)
        ports[dev["name"]] = acc.sockets[0].getsockname()[1]
    tmp = state_dir / "ssh_ports.json.tmp"
    tmp.write_text(json.dumps(ports))
    tmp.replace(state_dir / "ssh_ports.json")
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    for acc in acceptors:
        acc.close()


# --------------------------------------------------------------------------- control (used by ``lab up/down``)


def prepare(state_dir: Path, devices: list[tuple[str, str]], vty: dict[str, str] | None = None) -> None:
    """Write ssh.json, a host key per device and the client key.

    ``devices`` is [(name, namespace)]; ``vty`` maps a device to its FRR vty socket dir (for ``vtysh``).
    """
    for name, _ in devices:
        key = asyncssh.generate_private_key("ssh-ed25519")
        _write_private(state_dir / "hostkeys" / name, key.export_private_key("openssh"))
    ck = asyncssh.generate_private_key("ssh-ed25519")
    _write_private(state_dir / "id_ed25519", ck.export_private_key("openssh"))
    _write_private(state_dir / "id_ed25519.pub", ck.export_public_key("openssh"))
    vty = vty or {}
    spec = {"devices": [{"name": n, "ns": ns, "vty": vty.get(n)} for n, ns in devices]}
    _write_private(state_dir / "ssh.json", json.dumps(spec).encode())


def spawn(state_dir: Path) -> subprocess.Popen[bytes]:
    """Start the daemon in the background (its own session; pid in labssh.pid)."""
    (state_dir / "ssh_ports.json").unlink(missing_ok=True)
    log = open(state_dir / "labssh.log", "ab")
    root = str(Path(__file__).resolve().parents[2])
    env = {**os.environ, "PYTHONPATH": root + os.pathsep + os.environ.get("PYTHONPATH", "")}
    proc = subprocess.Popen([sys.executable, "-m", "anycast_tui.lab.labssh", str(state_dir)], stdin=subprocess.DEVNULL,
                            stdout=log, stderr=log, start_new_session=True, env=env, cwd="/")
    log.close()
    (state_dir / "labssh.pid").write_text(str(proc.pid))
    return proc


def wait_ports(state_dir: Path, proc: subprocess.Popen[bytes], timeout_s: float = 20.0) -> dict[str, int]:
    """device → port, once the daemon listens."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if (state_dir / "ssh_ports.json").exists():
            return {k: int(v) for k, v in json.loads((state_dir / "ssh_ports.json").read_text()).items()}
        if proc.poll() is not None:
            break
        time.sleep(0.02)
    tail = (state_dir / "labssh.log").read_text(errors="replace").strip().splitlines()[-1:] or ["no output"]
    raise RuntimeError(f"lab SSH daemon did not start: {tail[0]}")


def start(state_dir: Path, timeout_s: float = 20.0) -> dict[str, int]:
    """Start the daemon and wait until it listens; returns device → port."""
    return wait_ports(state_dir, spawn(state_dir), timeout_s)


def known_hosts(state_dir: Path, ports: dict[str, int]) -> str:
    lines = []
    for name, port in ports.items():
        key = asyncssh.read_private_key(str(state_dir / "hostkeys" / name))
        lines.append(f"[127.0.0.1]:{port} {key.export_public_key('openssh').decode().strip()}\n")
    return "".join(lines)


def main(argv: list[str] | None = None) -> int:
    args = argv if argv is not None else sys.argv[1:]
    if len(args) != 1:
        print("usage: python3 -m anycast_tui.lab.labssh STATE_DIR", file=sys.stderr)
        return 2
    asyncio.run(_serve(Path(args[0])))
    return 0


if __name__ == "__main__":
    sys.exit(main())
