"""Report of a recorded demo session, end to end: leaf03's failure as the one failure incident naming it, with
the numbers the monitor recorded (JSON, Markdown and HTML alike), the worst incident, the anycast timeline,
pictures beside the Markdown, and the HTML rendered by headless Chromium (skipped where chromium is not
installed, except under CI=true, where .ci/run installs it: there it fails)."""

from __future__ import annotations

import json
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

from anycast_tui.model.types import EventKind
from anycast_tui.record import incidentlog
from anycast_tui.record.report import md_text
from anycast_tui.record.reader import Recording
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
    for name in ("pm.md", "pm.html", "pm.json"):
        proc = cli("report", str(session), "-o", str(out / name))
        assert proc.returncode == 0, proc.stderr
        assert f"wrote {out / name} ({name[3:]}, {(out / name).stat().st_size} bytes)" in proc.stderr
    return out


def _cells(line: str) -> list[str]:
    return [c.strip() for c in re.split(r"(?<!\\)\|", line.strip().strip("|"))]


def _section(md: str, title: str) -> str:
    return md.split(f"## {title}\n", 1)[1].split("\n## ", 1)[0]


def test_leaf03_failure_is_one_incident_with_the_recorded_numbers(session, reports):
    data = json.loads((reports / "pm.json").read_text(), parse_constant=lambda c: pytest.fail(f"not strict: {c}"))
    with Recording.open(session) as rec:
        stored, recorded = incidentlog.of_recording(rec)
    assert data["schema"] == 1 and data["recorded"] is recorded
    failures = [i for i in data["incidents"] if i["kind"] == "failure" and "leaf03" in i["cause"]]
    assert len(failures) == 1, [i["cause"] for i in data["incidents"]]
    inc = failures[0]
    assert inc["servers_lost"] == ["server03"] and "leaf03" in inc["devices"]
    ri = next(r for r in stored if r.incident.id == inc["id"])
    est = ri.impact.onset.estimated
    assert inc["impact"]["estimated"] == {"flows": est.flows, "moved": est.moved, "tcp_reset": est.tcp_reset,
                                          "udp_moved": est.udp_moved, "collateral": est.collateral}
    assert est.moved > 0 and est.moved == est.tcp_reset + est.udp_moved
    assert inc["impact"]["live"] is None  # the simulated servers report no live connections
    md = (reports / "pm.md").read_text()
    html = (reports / "pm.html").read_text()
    row = next(_cells(x) for x in _section(md, "Incidents").splitlines() if x.startswith(f"| \\#{inc['id']} |"))
    assert row[1] == "failure" and "leaf03" in row[5] and row[6].startswith("server03 (1 of 4 servers, 25 %)")
    assert f"{est.moved:,} moved: {est.tcp_reset:,} TCP reset, {est.udp_moved:,} UDP" in row[8]
    assert f"{est.moved:,} moved ({est.tcp_reset:,} TCP reset, {est.udp_moved:,} UDP) of 10,000 synthetic flows" in html
    worst = next(x for x in md.splitlines() if x.startswith("| Worst incident"))
    assert f"\\#{data['worst_incident']} at" in worst and data["worst_incident"] == inc["id"]
    assert "estimated from 10,000 synthetic flows" in _section(md, "Summary")


def test_timeline_shows_the_anycast_events(session, reports):
    md = (reports / "pm.md").read_text()
    with Recording.open(session) as rec:
        events = rec.events
        anycast = set(rec.state_at(rec.window[1]).anycast_prefixes)
        stored, _ = incidentlog.of_recording(rec)
    in_incident = {e for r in stored for e in r.incident.all_events}
    health = {EventKind.DEVICE_UNREACHABLE, EventKind.DEVICE_BACK, EventKind.LINK_DOWN, EventKind.LINK_UP}
    want = [e for e in events if e.prefix in anycast or e.kind in health or e in in_incident]
    rows = [_cells(line) for line in _section(md, "Timeline").splitlines() if line.startswith("| 20")]
    assert 0 < len(rows) == len(want) < len(events)
    for row, e in zip(rows, want):
        assert row[0] == iso(e.time_ms) and row[1] == md_text(e.device) and row[2] == md_text(e.kind.value)
        assert row[3] == md_text(e.detail)


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
