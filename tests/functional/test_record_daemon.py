"""The recorder as a process: kill -9 loses only the uncommitted second; SIGTERM stops it cleanly;
``recordings`` and ``report`` on what it wrote."""

from __future__ import annotations

import json
import os
import signal
import stat
import subprocess
import sys
import textwrap
from pathlib import Path

from anycast_tui.record.reader import Recording

ROOT = Path(__file__).resolve().parents[2]
ENV = {**os.environ, "PYTHONPATH": str(ROOT)}

CHILD = textwrap.dedent("""
    import sys, time
    from anycast_tui.lab.sim import SimFabric
    from anycast_tui.model.timeline import Timeline
    from anycast_tui.record.writer import Recorder

    class Loud(Recorder):
        def flush(self):
            n = super().flush()
            if n:
                print("F", self._last_t, flush=True)
            return n

    sim = SimFabric()
    tl = Timeline()
    rec = Loud(sys.argv[1], keyframe_every=5)  # the default: its own thread commits once a second
    rec.attach(tl)
    i = 0
    while True:  # never closes: only kill -9 ends it
        i += 1
        if i % 7 == 0:
            sim.fail_device("leaf02") if sim.is_up("leaf02") else sim.restore_device("leaf02")
        for name in sim.devices:
            tl.update(sim.device_state(name, int(time.time() * 1000)))
        time.sleep(0.02)
""")


def test_kill_9_keeps_every_committed_tick(tmp_path):
    path = tmp_path / "k.atrec"
    child = subprocess.Popen([sys.executable, "-c", CHILD, str(path)], stdout=subprocess.PIPE, text=True, env=ENV)
    flushed = []
    try:
        for line in child.stdout:  # type: ignore[union-attr]
            flushed.append(int(line.split()[1]))
            if len(flushed) == 3:
                break
        os.kill(child.pid, signal.SIGKILL)  # mid-write: the loop never pauses
    finally:
        child.kill()
        child.wait()
    assert len(flushed) == 3, "the recorder committed on its own, without explicit flushes"
    assert (tmp_path / "k.atrec-wal").exists()  # nothing was checkpointed or closed
    with Recording.open(path) as rec:
        assert rec.damage is None
        assert rec.window is not None and rec.window[1] >= flushed[-1]
        assert len(rec.ticks()) >= 3
        assert rec.events  # leaf02 failed at least once in the committed part
        rec.state_at(rec.window[1])  # the last committed tick decodes


def _run(*args: str, **kw) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "anycast_tui.cli", *args], capture_output=True, text=True, env=ENV,
                          timeout=60, **kw)


def test_record_daemon_stops_cleanly_on_sigterm(tmp_path):
    path = tmp_path / "d.atrec"
    proc = subprocess.Popen([sys.executable, "-m", "anycast_tui.cli", "record", "--sim", "--interval", "0.2",
                             "--sim-cycle", "0.5", "--no-impact", "-o", str(path)],
                            stderr=subprocess.PIPE, text=True, env=ENV)
    try:
        for line in proc.stderr:  # type: ignore[union-attr]
            if "sim: leaf02 failed" in line:  # leaf01 failed and came back before this
                break
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=30)
    finally:
        proc.kill()
    assert proc.returncode == 0, err
    assert "stopping" in err and "closed" in err
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert not (tmp_path / "d.atrec-wal").exists()  # checkpointed and closed
    with Recording.open(path) as rec:
        assert rec.damage is None and "closed_ms" in rec.meta
        kinds = {e.kind.value for e in rec.events}
        assert {"device_unreachable", "device_back"} <= kinds
        assert json.loads(rec.meta["summary"])["events"] == len(rec.events)


def test_recordings_and_report_commands(tmp_path):
    d = tmp_path / "recs"
    r = _run("record", "--sim", "--interval", "0.2", "--duration", "2.5", "--sim-cycle", "0.6", "--dir", str(d))
    assert r.returncode == 0, r.stderr
    files = list(d.glob("*.atrec"))
    assert len(files) == 1
    listing = _run("recordings", str(d), "--json")
    assert listing.returncode == 0, listing.stderr
    (row,) = json.loads(listing.stdout)
    with Recording.open(files[0]) as rec:
        assert row["events"] == len(rec.events) > 0 and row["state"] == "closed"
        assert row["end_ms"] - row["start_ms"] == rec.window[1] - rec.window[0]
        details = [e.detail for e in rec.events]
    text = _run("recordings", str(d))
    assert files[0].name in text.stdout
    out = tmp_path / "pm.html"
    rep = _run("report", str(files[0]), "-o", str(out))
    assert rep.returncode == 0, rep.stderr
    page = out.read_text()
    assert page.startswith("<!DOCTYPE html>") and stat.S_IMODE(out.stat().st_mode) == 0o600
    # incidents and their impact computed while recording, stored, and shown as such
    assert "Worst incident" in page and "as the monitor computed them" in page and "TCP resets," in page
    md = _run("report", str(files[0]), "--scrub", "--all")
    assert md.returncode == 0 and "# anycast-tui postmortem" in md.stdout
    assert "leaf01" not in md.stdout and "192.0.2.53" not in md.stdout
    assert len([line for line in md.stdout.splitlines() if line.startswith("| 20")]) == len(details)
    bad = _run("report", str(tmp_path / "nope.atrec"))
    assert bad.returncode == 2 and bad.stderr.count("\n") == 1 and "no such file" in bad.stderr
    newer = tmp_path / "x.atrec"
    newer.write_bytes(files[0].read_bytes())
    import sqlite3

    with sqlite3.connect(newer) as db:
        db.execute("UPDATE meta SET value = '7' WHERE key = 'schema_version'")
    bad = _run("report", str(newer))
    assert bad.returncode == 2 and "schema version 7 is newer" in bad.stderr
