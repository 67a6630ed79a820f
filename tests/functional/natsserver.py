"""Real ``nats-server`` processes for the fleet tests: JetStream on, 127.0.0.1, a free port, its own store."""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Callable

import pytest


def nats_server_binary() -> str:
    path = shutil.which("nats-server") or (os.path.exists("/usr/sbin/nats-server") and "/usr/sbin/nats-server")
    if not path:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail("CI=true but nats-server is not installed (.ci/run installs the Debian package nats-server)")
        pytest.skip("nats-server not installed (apt-get install nats-server)")
    return path


def _die_with_parent() -> None:
    """In the child: SIGTERM when the test process dies (a test killed by its timeout leaves no server)."""
    try:
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except OSError:
        pass


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class NatsServer:
    """``nats-server -js -a 127.0.0.1 -p PORT -sd DIR``; ``restart()`` keeps the port and the store."""

    def __init__(self, workdir: Path, *, config: str | None = None) -> None:
        self.binary = nats_server_binary()
        self.port = free_port()
        self.store = workdir / "jetstream"
        self.log = workdir / "nats-server.log"
        self.config = config
        self.workdir = workdir
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"nats://127.0.0.1:{self.port}"

    def start(self) -> None:
        cmd = [self.binary, "-js", "-a", "127.0.0.1", "-p", str(self.port), "-sd", str(self.store)]
        if self.config is not None:
            conf = self.workdir / "nats.conf"
            conf.write_text(self.config)
            cmd += ["-c", str(conf)]
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                         preexec_fn=_die_with_parent)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"nats-server exited: {self.log.read_text()[-2000:]}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                    return
            except OSError:
                time.sleep(0.05)
        raise AssertionError("nats-server did not listen within 30 s")

    def kill(self) -> None:
        """SIGKILL: the server gone at once, nothing flushed or said to its peers."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self.proc = None

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None


class NatsCluster:
    """``n`` nats-servers (JetStream on) routed into one cluster on 127.0.0.1: each its own client and route port,
    its own store and log under ``workdir/nI``; ``urls`` lists them all (a client's server list)."""

    def __init__(self, workdir: Path, n: int = 3, *, name: str = "atui") -> None:
        routes = [free_port() for _ in range(n)]
        self.nodes: list[NatsServer] = []
        for i in range(n):
            d = workdir / f"n{i}"
            d.mkdir(parents=True, exist_ok=True)
            peers = ", ".join(f"nats-route://127.0.0.1:{p}" for j, p in enumerate(routes) if j != i)
            conf = (f"server_name: n{i}\ncluster {{\n  name: {name}\n  listen: 127.0.0.1:{routes[i]}\n"
                    f"  routes: [{peers}]\n}}\n")
            self.nodes.append(NatsServer(d, config=conf))

    @property
    def urls(self) -> list[str]:
        return [s.url for s in self.nodes]

    def node(self, server_name: str) -> NatsServer:
        return self.nodes[int(server_name.removeprefix("n"))]

    def start(self) -> None:
        for s in self.nodes:
            s.start()

    def stop(self) -> None:
        for s in self.nodes:
            s.stop()


async def wait_for(cond: Callable[[], Any], what: str, timeout: float = 60.0) -> Any:
    """Poll ``cond`` until it is truthy (a generous deadline, not a timing assertion)."""
    deadline = time.monotonic() + timeout
    while True:
        got = cond()
        if got:
            return got
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.05)


def same_content(a: Any, b: Any) -> bool:
    """Two DeviceStates of one device hold the same data (health and times aside)."""
    return (a.device == b.device and a.routes == b.routes and a.nexthops == b.nexthops
            and a.interfaces == b.interfaces and a.hash == b.hash and a.flows == b.flows)


def write_inventory(path: Path, inventory: Any, *, extra: tuple[str, ...] = (),
                    device_lines: dict[str, tuple[str, ...]] | None = None) -> Path:
    """The inventory's devices as a TOML file ``collect -c`` reads; ``extra`` lines after them (tables such as
    ``[flow_export]``), ``device_lines`` more keys of a device."""
    lines = ["[fabric]", f"poll_interval_s = {inventory.poll_interval_s}",
             "anycast_prefixes = [" + ", ".join(f'"{p}"' for p in inventory.anycast_prefixes) + "]", ""]
    for d in inventory.devices:
        lines += ["[[device]]", *(device_lines or {}).get(d.name, ()),
                  f'name = "{d.name}"', f'role = "{d.role.value}"', f'platform = "{d.platform}"',
                  f'host = "{d.host}"', f"port = {d.port}", f'user = "{d.user}"', f'key_path = "{d.key_path}"',
                  f'known_hosts = "{d.known_hosts}"', "use_ssh_config = false", "use_agent = false",
                  f"command_timeout_s = {d.command_timeout_s}", f"connect_timeout_s = {d.connect_timeout_s}",
                  f"backoff_base_s = {d.backoff_base_s}", f"backoff_max_s = {d.backoff_max_s}", ""]
    path.write_text("\n".join([*lines, *extra, ""]))
    return path


def _anycast_tui(log: Path, *args: str) -> subprocess.Popen:
    """``anycast-tui ARGS`` as its own process (this tree first on PYTHONPATH), output into ``log``."""
    env = dict(os.environ)
    root = str(Path(__file__).resolve().parents[2])
    env["PYTHONPATH"] = root + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    with open(log, "ab") as out:
        return subprocess.Popen([sys.executable, "-m", "anycast_tui", *args], stdout=out, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, env=env)


def start_collector(config: Path, url: str, site: str, log: Path, *extra: str) -> subprocess.Popen:
    return _anycast_tui(log, "collect", "-c", str(config), "--publish", url, "--site", site, *extra)


def start_recorder(url: str, output: Path, log: Path) -> subprocess.Popen:
    """``record --source URL -o OUTPUT`` until SIGTERM."""
    return _anycast_tui(log, "record", "--source", url, "-o", str(output))
