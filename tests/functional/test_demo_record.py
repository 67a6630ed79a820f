"""``demo`` records by default: the session file holds the events and the impact the engine computed for them."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from anycast_tui.model.types import EventKind
from anycast_tui.record.reader import Recording

ROOT = Path(__file__).resolve().parents[2]
CLI = [sys.executable, "-c", "import sys; from anycast_tui.cli import main; sys.exit(main())"]

pytestmark = pytest.mark.ssh


def test_headless_demo_is_recorded_with_impact(tmp_path):
    proc = subprocess.run([*CLI, "demo", "--headless", "12", "--interval", "0.5", "--record-dir", str(tmp_path)],
                          cwd=ROOT, capture_output=True, text=True, timeout=90, stdin=subprocess.DEVNULL)
    assert proc.returncode == 0, proc.stderr
    files = list(tmp_path.iterdir())
    assert len(files) == 1 and f"recorded to {files[0]}" in proc.stderr
    assert files[0].stat().st_mode & 0o777 == 0o600
    rec = Recording.open(files[0])
    assert rec.damage is None
    removed = [i for i, e in enumerate(rec.events)
               if e.kind is EventKind.NEXTHOP_REMOVED and e.prefix == "192.0.2.53/32"]
    assert {rec.events[i].device for i in removed} == {"spine01", "spine02"}
    impacts = rec.impacts()
    for i in removed:
        s = impacts[i]
        assert s["prefix"] == "192.0.2.53/32"
        assert s["moved"] > 0 and s["tcp_reset"] + s["udp"] == s["moved"]
    # The inventory is kept (for the postmortem), its secrets are not.
    inv = rec.inventory()
    assert {d["name"] for d in inv["devices"]} >= {"spine01", "leaf03", "server04"}


def test_no_record_writes_nothing(tmp_path):
    proc = subprocess.run([*CLI, "demo", "--headless", "1", "--no-scenario", "--no-record",
                           "--record-dir", str(tmp_path)],
                          cwd=ROOT, capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)
    assert proc.returncode == 0, proc.stderr
    assert list(tmp_path.iterdir()) == [] and "recorded to" not in proc.stderr
