"""OpenSSH's own sshd as a device, for the collector's tests: the server operators really run.

``OpenSSHDevice`` starts ``/usr/sbin/sshd -D`` on 127.0.0.1 in a private mount namespace of its own
(``unshare --mount``; it ends with sshd) whose /etc/passwd has one more user, the device's login: an
ordinary, non-root user (uid 60000-64999, unique per device) — as operators give a monitoring
account, and as OpenSSH wants for signalling sessions (it refuses "signal" requests to root logins
and to forced commands).  That user's login shell is ``devshell``, a few lines of sh that read
``mode`` (a file the test rewrites) and act out the device:

* ``normal``: runs the command line (``sh -c``; ``ip`` and ``sysctl`` are this host's, read-only);
* ``hang``: never answers (sleeps an hour);
* ``flood``: prints ``y`` lines without end (``yes``);
* ``garbage``: prints garbage and exits 0.

``forced=True`` sets ``ForceCommand devshell`` instead (the line arrives in SSH_ORIGINAL_COMMAND).
Every process of the device's login runs as its uid, so :meth:`ours` (``ps -u``) is exactly what
the collector left on the device.  Needs root (unshare, mount); skips otherwise outside CI.
"""

from __future__ import annotations

import asyncio
import os
import random
import shutil
import signal
import subprocess
import tempfile
from pathlib import Path

import asyncssh
import pytest

from anycast_tui.collect.inventory import DeviceConfig, Inventory
from anycast_tui.model.types import Role

SSHD = "/usr/sbin/sshd"

DEVSHELL = """#!/bin/sh
# The device: login shell (sh -c LINE) or ForceCommand (SSH_ORIGINAL_COMMAND).
line=${SSH_ORIGINAL_COMMAND:-$2}
PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin; export PATH  # ip, sysctl
mode=$(cat '%(dir)s/mode')
case "$mode" in
  hang) exec sleep 3600 ;;
  flood) exec yes ;;
  garbage) printf '\\033[1mgarbled\\033[0m <<< not the output you asked for >>>\\n{"dst": [oops\\n'; exit 0 ;;
esac
exec /bin/sh -c "$line"
"""


def require_root() -> None:
    missing = [p for p in (SSHD, shutil.which("unshare") or "unshare") if not os.path.exists(p)]
    if os.geteuid() != 0 or missing:
        why = "not root" if os.geteuid() != 0 else f"missing {', '.join(missing)}"
        if os.environ.get("CI"):
            pytest.fail(f"OpenSSH device tests need root, sshd and unshare in CI: {why}")
        pytest.skip(f"OpenSSH device tests need root, sshd and unshare: {why}")


class OpenSSHDevice:
    def __init__(self, name: str = "leaf01", *, max_sessions: int = 10, forced: bool = False,
                 permit_tty: bool = True):
        # its own directory under /tmp, reachable by the device user (pytest's tmp_path is root's only)
        self.dir = Path(tempfile.mkdtemp(prefix="atui-ssh-"))
        self.name = name
        self.max_sessions = max_sessions
        self.forced = forced
        self.permit_tty = permit_tty
        self.uid = random.randint(60000, 64999)
        self.user = f"atuidev{self.uid}"
        self.port = 0
        self.proc: subprocess.Popen[bytes] | None = None
        self.client_key = self.dir / "client_ed25519"
        self.known_hosts = self.dir / "known_hosts"

    def set_mode(self, mode: str) -> None:
        assert mode in ("normal", "hang", "flood", "garbage")
        (self.dir / "mode").write_text(mode + "\n")

    async def start(self) -> None:
        d = self.dir
        os.chmod(d, 0o755)  # the device user reads mode and runs devshell
        host_key = asyncssh.generate_private_key("ssh-ed25519")
        client = asyncssh.generate_private_key("ssh-ed25519")
        _write(d / "host_ed25519", host_key.export_private_key("openssh"), 0o600)
        _write(self.client_key, client.export_private_key("openssh"), 0o600)
        _write(d / "authorized_keys", client.export_public_key("openssh"), 0o644)
        _write(d / "devshell", (DEVSHELL % {"dir": d}).encode(), 0o755)
        self.set_mode("normal")
        passwd = Path("/etc/passwd").read_text() + f"{self.user}:x:{self.uid}:{self.uid}::{d}:{d}/devshell\n"
        group = Path("/etc/group").read_text() + f"{self.user}:x:{self.uid}:\n"
        _write(d / "passwd", passwd.encode(), 0o644)
        _write(d / "group", group.encode(), 0o644)
        self.port = _free_port()
        config = [
            "ListenAddress 127.0.0.1", f"Port {self.port}", f"HostKey {d}/host_ed25519",
            f"AuthorizedKeysFile {d}/authorized_keys", f"PidFile {d}/sshd.pid", "UsePAM no", "StrictModes no",
            "PasswordAuthentication no", "KbdInteractiveAuthentication no", f"MaxSessions {self.max_sessions}",
            f"PermitTTY {'yes' if self.permit_tty else 'no'}", "PrintMotd no", "LogLevel VERBOSE",
            f"AllowUsers {self.user}",
        ]
        if self.forced:
            config.append(f"ForceCommand {d}/devshell")
        _write(d / "sshd_config", ("\n".join(config) + "\n").encode(), 0o644)
        Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)  # sshd's privilege separation directory
        script = (f"mount --bind {d}/passwd /etc/passwd && mount --bind {d}/group /etc/group && "
                  f"exec {SSHD} -D -e -f {d}/sshd_config")
        self.log = open(d / "sshd.log", "wb")  # noqa: SIM115 (closed by stop)
        self.proc = subprocess.Popen(["unshare", "--mount", "--propagation", "private", "sh", "-c", script],
                                     stdout=self.log, stderr=subprocess.STDOUT)
        for _ in range(500):  # bounded: sshd listens within milliseconds
            if self.proc.poll() is not None:
                raise RuntimeError(f"sshd exited: {(d / 'sshd.log').read_text()[-500:]}")
            try:
                _r, w = await asyncio.open_connection("127.0.0.1", self.port)
                w.close()
                break
            except OSError:
                await asyncio.sleep(0.02)
        else:
            raise RuntimeError("sshd did not listen")
        line = f"[127.0.0.1]:{self.port} {host_key.export_public_key('openssh').decode().strip()}\n"
        _write(self.known_hosts, line.encode(), 0o600)

    def ours(self) -> list[str]:
        """``pid comm args`` of every process of the device's login but sshd's own (the collector's leftovers)."""
        out = subprocess.run(["ps", "-o", "pid=,comm=,args=", "-u", str(self.uid)], capture_output=True,
                             text=True).stdout
        return [ln.strip() for ln in out.splitlines() if ln.split() and ln.split()[1] != "sshd"]

    def all_of_login(self) -> list[str]:
        """Every process of the device's login, sshd's per-connection processes included."""
        out = subprocess.run(["ps", "-o", "pid=,comm=,args=", "-u", str(self.uid)], capture_output=True,
                             text=True).stdout
        return [ln.strip() for ln in out.splitlines() if ln.strip()]

    def sshd_log(self) -> str:
        return (self.dir / "sshd.log").read_text(errors="replace")

    def config(self, **kw: object) -> DeviceConfig:
        base: dict[str, object] = dict(platform="linux", role=Role.LEAF, host="127.0.0.1", port=self.port,
                                       user=self.user, key_path=self.client_key, known_hosts=self.known_hosts,
                                       use_ssh_config=False, use_agent=False)
        return DeviceConfig(self.name, **{**base, **kw})  # type: ignore[arg-type]

    def inventory(self, **kw: object) -> Inventory:
        return Inventory((self.config(**kw),), 1.0, ("192.0.2.53/32",))

    def stop(self) -> list[str]:
        """Stop sshd, then end (and return) whatever of the login is still running."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        left = self.all_of_login()
        for ln in left:
            try:
                os.kill(int(ln.split()[0]), signal.SIGKILL)
            except (ProcessLookupError, ValueError):
                pass
        self.log.close()
        shutil.rmtree(self.dir, ignore_errors=True)
        return left


def _write(path: Path, data: bytes, mode: int) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)
    os.chmod(path, mode)


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
