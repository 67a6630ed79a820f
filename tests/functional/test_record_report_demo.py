"""Report of a recorded demo session, end to end: every event with the moved-flow counts the engine computed,
the worst event by TCP resets, pictures beside the Markdown, and the HTML rendered by headless Chromium
(skipped where chromium is not installed, except under CI=true, where .ci/run installs it: there it fails)."""

from __future__ import annotations

import os
import re
import shutil
import struct
import subprocess
import sys
import tempfile
import zlib
from pathlib import Path

import pytest

from anycast_tui.record.store import Recording
from anycast_tui.record.timefmt import iso

ROOT = Path(__file__).resolve().parents[2]
CLI = [sys.executable, "-c", "import sys; from anycast_tui.cli import main; sys.exit(main())"]

pytestmark = pytest.mark.ssh


def cli(*args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run([*CLI, *args], cwd=ROOT, capture_output=True, text=True, timeout=timeout,
                          stdin=subprocess.DEVNULL)


@pytest.fixture(scope="module")
def session(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("demo")
    proc = cli("demo", "--headless", "12", "--interval", "0.5", "--record-dir", str(d))
    assert proc.returncode == 0, proc.stderr
    (path,) = d.glob("*.atrec")
    return path


@pytest.fixture(scope="module")
def reports(session, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("out")
    for name in ("pm.md", "pm.html"):
        proc = cli("report", str(session), "-o", str(out / name))
        assert proc.returncode == 0, proc.stderr
    return out


def _cells(line: str) -> list[str]:
    return [c.strip() for c in re.split(r"(?<!\\)\|", line.strip().strip("|"))]


def test_every_event_with_the_engines_moved_flow_counts(session, reports):
    md = (reports / "pm.md").read_text()
    with Recording.open(session) as rec:
        events, impacts = rec.events, rec.impacts()
    assert impacts, "the demo's scenario moves anycast flows"
    rows = [_cells(line) for line in md.split("## Timeline", 1)[1].split("## ", 1)[0].splitlines()
            if line.startswith("| 20")]
    assert len(rows) == len(events)
    for row, (i, e) in zip(rows, enumerate(events)):
        assert row[0] == iso(e.time_ms) and row[1] == e.device and row[2] == e.kind.value
        imp = impacts.get(i)
        assert row[4:7] == ([str(imp["moved"]), str(imp["tcp_reset"]), str(imp["udp"])] if imp else ["", "", ""])
    for i, imp in impacts.items():  # the per-event section repeats them with the collateral and servers
        assert f"{imp['moved']} of {imp['flows']} sampled; TCP reset {imp['tcp_reset']}, UDP moved {imp['udp']}" in md
    worst_i = max(impacts, key=lambda k: (impacts[k]["tcp_reset"], -events[k].time_ms))
    summary = next(line for line in md.splitlines() if line.startswith("| Worst event (TCP resets)"))
    assert events[worst_i].detail in summary and f"{impacts[worst_i]['tcp_reset']} TCP resets" in summary


def test_pictures_beside_the_markdown(reports):
    md = (reports / "pm.md").read_text()
    linked = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", md)
    assert linked and all(name.startswith("pm-groups-") for name in linked)
    for name in linked:
        f = reports / name
        assert f.read_text().startswith("<svg") and f.stat().st_mode & 0o777 == 0o600
    assert sorted(p.name for p in reports.glob("*.svg")) == sorted(linked)
    html = (reports / "pm.html").read_text()
    assert html.count("<svg") == len(linked)  # the same pictures, inline


def _png_size(data: bytes) -> tuple[int, int]:
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and data[12:16] == b"IHDR"
    return struct.unpack(">II", data[16:24])


def _png_rows(data: bytes) -> tuple[int, bytes]:
    """(bytes per pixel, raw scanlines with their filter bytes) of an 8-bit RGB/RGBA PNG."""
    pos, idat, bpp = 8, b"", 3
    while pos < len(data):
        n, kind = struct.unpack(">I4s", data[pos:pos + 8])
        body = data[pos + 8:pos + 8 + n]
        if kind == b"IHDR":
            bpp = {2: 3, 6: 4}[body[9]]
        elif kind == b"IDAT":
            idat += body
        pos += 12 + n
    return bpp, zlib.decompress(idat)


def _shot(chromium: str, page: Path, png: Path) -> bytes:
    with tempfile.TemporaryDirectory() as profile:
        # root needs --no-sandbox; the rest keeps it off the (closed) network and out of any shared profile
        subprocess.run([chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                        "--disable-background-networking", "--disable-component-update", "--disable-sync",
                        "--no-first-run", f"--user-data-dir={profile}",
                        f"--screenshot={png}", "--window-size=1200,2000", page.as_uri()],
                       capture_output=True, timeout=120, stdin=subprocess.DEVNULL)
    assert png.is_file(), f"chromium wrote no screenshot of {page}"
    return png.read_bytes()


def test_html_renders_in_headless_chromium(reports, tmp_path):
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail("CI=true but chromium is not installed (.ci/run installs the Debian package chromium)")
        pytest.skip("chromium not installed (apt-get install chromium)")
    blank = tmp_path / "blank.html"
    blank.write_text("<!DOCTYPE html><html><body></body></html>")
    shot = _shot(chromium, reports / "pm.html", tmp_path / "report.png")
    empty = _shot(chromium, blank, tmp_path / "blank.png")
    assert _png_size(shot) == (1200, 2000)
    assert _busy_lines(empty) == 0  # the measure sees nothing on a white page...
    assert _busy_lines(shot) > 500  # ...and text and tables over most of the report's screen
    assert len(shot) > 20 * len(empty)


def _busy_lines(png: bytes) -> int:
    """Scanlines whose filtered bytes are not all 0x00/0xff: none on a uniform white page."""
    bpp, rows = _png_rows(png)
    width, height = _png_size(png)
    stride = 1 + width * bpp
    return sum(1 for y in range(height) if rows[y * stride + 1:(y + 1) * stride].strip(b"\x00\xff"))
