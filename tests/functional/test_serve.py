"""``anycast-tui serve --demo`` in a subprocess, looked at by a real headless Chromium (DevTools protocol).

Chromium runs with every host name but 127.0.0.1 unresolvable (``--host-resolver-rules``): a page that needed a
CDN would miss it; every request the page made is read from Chromium's network log and must be to the server.
The terminal is drawn on a canvas (xterm.js), so the screenshot is read as pixels; the text the app sends is
read on a websocket of our own, as the page's script opens it.
"""

from __future__ import annotations

import asyncio
import base64
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import urlparse

import pytest

aiohttp = pytest.importorskip("aiohttp")  # textual-serve's own dependency
pytest.importorskip("textual_serve")

ROOT = Path(__file__).resolve().parents[2]
CLI = [sys.executable, "-m", "anycast_tui"]
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")

pytestmark = pytest.mark.ssh  # the demo serves its devices over SSH on 127.0.0.1


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _children(pid: int) -> set[int]:
    """Every live descendant of ``pid`` (from /proc; zombies are not alive)."""
    parent: dict[int, int] = {}
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            stat = Path(f"/proc/{d}/stat").read_text()
        except OSError:
            continue
        fields = stat.rpartition(")")[2].split()
        if fields[0] != "Z":
            parent[int(d)] = int(fields[1])
    out, todo = set(), [pid]
    while todo:
        p = todo.pop()
        kids = {c for c, pp in parent.items() if pp == p}
        todo += list(kids - out)
        out |= kids
    return out


def _alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0] != "Z"
    except OSError:
        return False


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


@pytest.fixture
def served(tmp_path):
    """``anycast-tui serve --demo`` on a free port: (base URL, Popen); SIGTERM at the end."""
    port = _free_port()
    env = {**os.environ, "PYTHONPATH": str(ROOT), "HOME": str(tmp_path)}
    proc = subprocess.Popen([*CLI, "serve", "--demo", "--no-scenario", "--bind", f"127.0.0.1:{port}"], cwd=ROOT,
                            env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    _wait_listening(port, proc)
    yield url, proc
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGKILL)  # whatever the test left: the whole group
        proc.wait()


def _wait_listening(port: int, proc: subprocess.Popen) -> None:
    deadline = time.monotonic() + 60
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                proc.kill()
                pytest.fail(f"serve did not start: {proc.communicate()[0]}")
            time.sleep(0.1)


async def _get(url: str) -> tuple[int, str, bytes]:
    async with aiohttp.ClientSession() as s, s.get(url) as r:
        return r.status, r.headers.get("Content-Type", ""), await r.read()


_CSI = re.compile(rb"\x1b(\[[0-9;?<>=]*[ -/]*[@-~]|\][^\x07\x1b]*(\x07|\x1b\\)|[@-Z\\-_])")


def test_page_and_its_assets_come_from_the_server_only(served):
    url, _ = served
    status, ctype, body = asyncio.run(_get(url + "/"))
    assert status == 200 and ctype.startswith("text/html")
    page = body.decode()
    assert "<title>anycast-tui demo</title>" in page
    # everything the page loads: <link href>, <script src>, CSS url(...) — on this server, and there
    loads = re.findall(r'(?:href|src)="([^"]+)"|url\("?([^")]+)"?\)', page)
    loads = [a or b for a, b in loads]
    assert any(u.endswith("/static/js/textual.js") for u in loads) and any(u.endswith(".ttf") for u in loads)
    for u in loads:
        assert urlparse(u).netloc == urlparse(url).netloc, f"the page loads {u} from another host"
        status, _, data = asyncio.run(_get(u))
        assert status == 200 and data, u
    assert "fonts.googleapis.com" not in page
    # the websocket the page's script opens is this server's too
    ws = re.search(r'data-session-websocket-url="([^"]+)"', page).group(1)
    assert ws == f"ws://{urlparse(url).netloc}/ws"


async def _tab(url: str, want: tuple[bytes, ...]) -> bytes:
    """One browser tab's websocket, as the page's script opens it: the screen's text (escape sequences taken
    out) until every one of ``want`` is on it, the tab closed, or a minute passed."""
    seen = b""
    async with aiohttp.ClientSession() as s, s.ws_connect(url.replace("http", "ws") + "/ws?width=100&height=30") as ws:
        await ws.send_json(["resize", {"width": 100, "height": 30}])
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                msg = await ws.receive(timeout=5)
            except asyncio.TimeoutError:
                continue
            if msg.type == aiohttp.WSMsgType.BINARY:
                seen += msg.data
                if all(n in _CSI.sub(b"", seen) for n in want):
                    break
            elif msg.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED, aiohttp.WSMsgType.ERROR):
                break
    return _CSI.sub(b"", seen)


def test_the_websocket_serves_the_demo_fabric(served):
    """What a browser tab gets: the app's screen, with the demo's devices in it."""
    url, proc = served
    want = (b"spine01", b"spine02", b"leaf01", b"leaf03", b"server04", b"10/10 ok")
    text = asyncio.run(_tab(url, want))
    for name in want:
        assert name in text, f"{name!r} not on the served screen; serve said:\n{_drain(proc)}"


def _drain(proc: subprocess.Popen) -> str:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
    try:
        return proc.communicate(timeout=30)[0]
    except subprocess.TimeoutExpired:
        return "(still running)"


class _Chromium:
    """A headless Chromium driven over the DevTools protocol; only 127.0.0.1 resolves."""

    def __init__(self, workdir: Path) -> None:
        self.proc = subprocess.Popen(
            [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--remote-debugging-port=0",
             f"--user-data-dir={workdir}", "--window-size=1280,800",
             "--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1", "about:blank"],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        for line in self.proc.stderr:
            m = re.search(r"DevTools listening on ws://127\.0\.0\.1:(\d+)/", line)
            if m:
                self.port = int(m.group(1))
                break
        else:
            raise RuntimeError("chromium printed no DevTools address")
        self.requests: list[str] = []
        self._n = 0

    async def open(self, session: aiohttp.ClientSession) -> None:
        async with session.get(f"http://127.0.0.1:{self.port}/json") as r:
            page = next(t for t in await r.json() if t["type"] == "page")
        self.ws = await session.ws_connect(page["webSocketDebuggerUrl"], max_msg_size=0)
        await self.call("Network.enable")
        await self.call("Page.enable")

    async def call(self, method: str, **params: object) -> dict:
        self._n += 1
        me = self._n
        await self.ws.send_json({"id": me, "method": method, "params": params})
        while True:
            msg = await self.ws.receive_json()
            if msg.get("method") == "Network.requestWillBeSent":
                self.requests.append(msg["params"]["request"]["url"])
            if msg.get("id") == me:
                assert "error" not in msg, msg
                return msg["result"]

    async def js(self, expression: str) -> object:
        r = await self.call("Runtime.evaluate", expression=expression, awaitPromise=True, returnByValue=True)
        assert "exceptionDetails" not in r, r
        return r["result"].get("value")

    def close(self) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=30)


# The screenshot's pixels, counted in the browser itself (no image library here): the share of pixels that are
# not the background, and the pixels of the palette's bluish green (Okabe–Ito #009E73: "✓ ok", "= exact"),
# which only a fabric with answering devices draws.
_PIXELS = """
(async (data) => {
  const img = new Image(); img.src = "data:image/png;base64," + data; await img.decode();
  const c = document.createElement("canvas"); c.width = img.width; c.height = img.height;
  const g = c.getContext("2d"); g.drawImage(img, 0, 0);
  const px = g.getImageData(0, 0, c.width, c.height).data;
  const at = 4 * (Math.floor(c.height * 0.75) * c.width + 2);  // left edge, below the panels: background
  const bg = [px[at], px[at + 1], px[at + 2]];
  let ink = 0, green = 0;
  for (let i = 0; i < px.length; i += 4) {
    const [r, gg, b] = [px[i], px[i + 1], px[i + 2]];
    if (Math.abs(r - bg[0]) + Math.abs(gg - bg[1]) + Math.abs(b - bg[2]) > 60) ink++;
    if (gg > 100 && gg > r + 50 && gg > b + 10) green++;
  }
  return {width: c.width, height: c.height, ink: ink / (c.width * c.height), green};
})
"""


def test_chromium_shows_the_fabric_offline_and_the_process_tree_ends(served, tmp_path):
    if CHROMIUM is None:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail("CI=true but chromium is not installed (.ci/run installs the Debian package chromium)")
        pytest.skip("needs chromium (Debian package chromium)")
    url, proc = served
    shot = Path(os.environ.get("ANYCAST_SERVE_SHOT") or tmp_path / "serve.png")
    browser = _Chromium(Path(tempfile.mkdtemp(dir=tmp_path)))

    async def look() -> tuple[dict, dict[int, str]]:
        async with aiohttp.ClientSession() as s:
            await browser.open(s)
            await browser.call("Page.navigate", url=url + "/")
            deadline = time.monotonic() + 90
            pixels: dict = {}
            while time.monotonic() < deadline:  # until the first poll's answers are drawn
                if "-first-byte" in (await browser.js("document.body ? document.body.className : ''") or ""):
                    data = (await browser.call("Page.captureScreenshot", format="png"))["data"]
                    pixels = await browser.js(f"{_PIXELS}({data!r})")
                    if pixels["green"] > 500:
                        shot.write_bytes(base64.b64decode(data))
                        break
                await asyncio.sleep(0.5)
            tree = {p: _cmdline(p) for p in _children(proc.pid)}
            await asyncio.to_thread(_stop, proc)  # the tab still open
            await browser.ws.close()
            return pixels, tree

    try:
        pixels, tree = asyncio.run(look())
    finally:
        browser.close()
    assert pixels.get("green", 0) > 500, f"no answering device drawn: {pixels}"
    assert pixels["ink"] > 0.02, pixels  # text on the page, not a blank or the intro
    # nothing but the server was asked for anything, and Chromium could resolve no other host
    hosts = {urlparse(u).netloc for u in browser.requests if not u.startswith("data:")}
    assert hosts == {urlparse(url).netloc}, browser.requests
    assert any(u.endswith(".ttf") for u in browser.requests)  # the bundled font, not a CDN's
    # serve was stopped with the tab still open: its app process and everything under serve ended
    assert any("anycast_tui demo" in cmd for cmd in tree.values()), f"no app process ran for the tab: {tree}"
    assert proc.returncode == 0, proc.stdout.read()
    left = [cmd for pid, cmd in tree.items() if _alive(pid)]
    assert not left, f"left running after serve stopped: {left}"


def _stop(proc: subprocess.Popen) -> None:
    """SIGTERM to serve; wait for it and then (a while) for what ran under it."""
    tree = _children(proc.pid)
    proc.send_signal(signal.SIGTERM)
    proc.wait(timeout=60)
    deadline = time.monotonic() + 30
    while any(_alive(p) for p in tree) and time.monotonic() < deadline:
        time.sleep(0.1)


def _serve(*args: str, cwd: Path = ROOT, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*CLI, "serve", *args], cwd=cwd, capture_output=True, text=True, timeout=timeout,
                          stdin=subprocess.DEVNULL, env={**os.environ, "PYTHONPATH": str(ROOT)})


@pytest.mark.parametrize("args, line", [
    (("--demo", "--bind", "foo"), "--bind 'foo': expected ADDR:PORT (e.g. 127.0.0.1:8000)"),
    (("--demo", "--bind", "127.0.0.1:0"), "--bind: give a port (the page names it to the browser; 0 would not be known)"),
    (("--demo", "--public-url", "ftp://x"), "--public-url 'ftp://x': expected http://… or https://…"),
    (("--source", "nats://u:p@127.0.0.1:4222"), "credentials in the NATS URL are refused"),
    (("-c", "/nonexistent/fabric.toml"), "/nonexistent/fabric.toml: cannot read"),
    (("--demo", "--site", "x"), "--site needs --source"),
    (("--demo", "--interval", "0.01"), "--interval: '0.01' is out of range 0.1..86400 s"),
])
def test_bad_options_are_one_line_before_anything_listens(args, line):
    proc = _serve(*args)
    assert proc.returncode == 2 and proc.stdout == ""
    assert proc.stderr.count("\n") == 1 and proc.stderr.startswith(f"anycast-tui serve: {line}"), proc.stderr


def test_a_non_loopback_bind_warns_in_one_line():
    port = _free_port()
    proc = subprocess.Popen([*CLI, "serve", "--demo", "--bind", f"0.0.0.0:{port}"], cwd=ROOT,
                            env={**os.environ, "PYTHONPATH": str(ROOT)}, stdin=subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        first = proc.stderr.readline()
        assert first.startswith("anycast-tui serve: warning: 0.0.0.0 is reachable from other hosts and the page has "
                                "no login"), first
        assert "reverse proxy" in first
        _wait_listening(port, proc)
    finally:
        proc.terminate()
        proc.communicate(timeout=60)
    assert proc.returncode == 0
    # behind a proxy (--public-url), or on loopback: no warning (stopped by a bad second option to stay quick)
    quiet = _serve("--demo", "--bind", f"0.0.0.0:{port}", "--public-url", "https://wall.example.net", "--site", "x")
    assert "warning" not in quiet.stderr


def test_the_tab_command_line_passes_a_hostile_config_path_intact(tmp_path):
    """The command line serve prints (and hands textual-serve's shell) quotes every argument: a path full of
    shell syntax reaches monitor as one argument and runs nothing."""
    weird = tmp_path / "fab $(touch PWNED) `touch PWNED2`; touch PWNED3 'x\".toml"
    weird.write_text('[fabric]\npoll_interval_s = 1\n\n[[device]]\nname = "a"\nhost = "127.0.0.1"\nport = 9\n')
    port = _free_port()
    proc = subprocess.Popen([*CLI, "serve", "-c", str(weird), "--bind", f"127.0.0.1:{port}"], cwd=tmp_path,
                            env={**os.environ, "PYTHONPATH": str(ROOT)}, stdin=subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        first = proc.stdout.readline()
    finally:
        proc.terminate()
        proc.communicate(timeout=60)
    command = first.partition("runs, per browser tab: ")[2].strip()
    assert command, first
    # what textual-serve does with it: /bin/sh -c COMMAND (here with --headless, as no browser is attached)
    run = subprocess.run(["/bin/sh", "-c", command + " --headless 0.5"], cwd=tmp_path, capture_output=True,
                         text=True, timeout=120, stdin=subprocess.DEVNULL, env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert "monitor: 1 devices" in run.stdout, run.stderr  # the inventory was read from that very path
    assert not [p.name for p in tmp_path.iterdir() if p.name.startswith("PWNED")]


async def test_tabs_on_the_bus_open_no_device_session(make_farm, tmp_path):
    """``serve --source nats://…``: two tabs, each its own viewer process, show the fabric the collector
    publishes; the devices see no SSH connection from them."""
    from natsserver import NatsServer, start_collector, write_inventory

    from anycast_tui.lab.sim import SimConfig, SimFabric

    server = NatsServer(tmp_path)
    server.start()
    sim = SimFabric(SimConfig())
    farm = await make_farm({n: sim.handler(n) for n in sim.devices})
    config = write_inventory(tmp_path / "fabric.toml", farm.inventory(
        sim.roles(), platform="sim", command_timeout_s=30.0, connect_timeout_s=30.0, backoff_base_s=0.1,
        backoff_max_s=0.3))
    collector = start_collector(config, server.url, "a", tmp_path / "collector.log", "--heartbeat", "2")
    port = _free_port()
    proc = subprocess.Popen([*CLI, "serve", "--source", server.url, "--bind", f"127.0.0.1:{port}"], cwd=ROOT,
                            env={**os.environ, "PYTHONPATH": str(ROOT), "HOME": str(tmp_path)},
                            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            start_new_session=True)
    try:
        await asyncio.to_thread(_wait_listening, port, proc)
        url = f"http://127.0.0.1:{port}"
        n = len(sim.devices)
        want = (b"spine01", b"leaf03", b"server04", f"{n}/{n} ok".encode())
        await _tab(url, want)  # the collector has polled every device once the first tab shows them all
        before = sum(ep.counters.connections for ep in farm.endpoints.values())
        tabs = await asyncio.gather(_tab(url, want), _tab(url, want))
        for text in tabs:
            assert all(w in text for w in want), text[-3000:]
        assert sum(ep.counters.connections for ep in farm.endpoints.values()) == before
    finally:
        await asyncio.to_thread(_stop, proc)
        collector.send_signal(signal.SIGTERM)
        await asyncio.to_thread(collector.wait, 60)
        server.stop()
    assert proc.returncode == 0
