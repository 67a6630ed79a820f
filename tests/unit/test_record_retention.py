"""Retention by age and total size; the file in use is never deleted."""

from __future__ import annotations

import os

from anycast_tui.record.paths import list_recordings, new_session_path
from anycast_tui.record.retention import prune

NOW = 2_000_000_000.0


def _files(d, n):
    out = []
    for i in range(n):
        p = d / f"monitor-{i}.atrec"
        p.write_bytes(b"x" * 1000)
        os.utime(p, (NOW - (n - i) * 86400, NOW - (n - i) * 86400))  # i-th is (n - i) days old
        out.append(p)
    return out


def test_prune_by_age(tmp_path):
    files = _files(tmp_path, 5)
    gone = prune(tmp_path, max_age_s=2.5 * 86400, now=NOW)
    assert gone == files[:3]
    assert list_recordings(tmp_path) == files[3:]


def test_prune_by_size_keeps_newest_and_the_active_file(tmp_path):
    files = _files(tmp_path, 5)
    (tmp_path / "other.txt").write_bytes(b"y" * 5000)  # not a recording: untouched
    gone = prune(tmp_path, max_bytes=2500, keep=[files[0]], now=NOW)
    assert files[0].exists() and gone == files[1:4]
    assert (tmp_path / "other.txt").exists()


def test_new_session_path_is_unique(tmp_path):
    a = new_session_path(tmp_path / "rec", "demo", now=NOW)
    a.write_bytes(b"")
    b = new_session_path(tmp_path / "rec", "demo", now=NOW)
    assert a != b and a.name.startswith("demo-2033") and b.name.endswith("-2.atrec")
    assert (tmp_path / "rec").stat().st_mode & 0o777 == 0o700
