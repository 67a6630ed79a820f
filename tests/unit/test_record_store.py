"""Session files: round trip against the live timeline, seeking, damage, schema, mode, secrets."""

from __future__ import annotations

import os
import sqlite3
import stat
import sys
import zlib
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from record_helpers import T0, Clock, record_session  # noqa: E402

from anycast_tui.collect.inventory import parse_inventory  # noqa: E402
from anycast_tui.lab.sim import SimFabric  # noqa: E402
from anycast_tui.model.timeline import Timeline  # noqa: E402
from anycast_tui.record import schema  # noqa: E402
from anycast_tui.record.reader import Recording, RecordingError  # noqa: E402
from anycast_tui.record.writer import Recorder  # noqa: E402


@pytest.fixture(scope="module")
def recorded(tmp_path_factory):
    return record_session(tmp_path_factory.mktemp("rec") / "s.atrec", ticks=30)


def test_every_tick_and_event_round_trip(recorded):
    with Recording.open(recorded.path) as rec:
        assert rec.damage is None
        assert rec.window == (recorded.states[0].taken_at_ms, recorded.states[-1].taken_at_ms)
        assert [t.t_ms for t in rec.ticks()] == [s.taken_at_ms for s in recorded.states]
        assert rec.events == recorded.events and len(rec.events) > 10
        for live in recorded.states:
            assert rec.state_at(live.taken_at_ms) == live


def test_seek_between_ticks_and_backwards(recorded):
    with Recording.open(recorded.path) as rec:
        for live in reversed(recorded.states):  # backwards: every seek restarts from a keyframe
            assert rec.state_at(live.taken_at_ms + 999) == live
        assert rec.state_at(T0 - 5000) == recorded.states[0]  # before the window: the first tick
        assert rec.state_at(recorded.states[5].taken_at_ms) == recorded.states[5]
        assert rec.state_at(recorded.states[2].taken_at_ms) == recorded.states[2]


def test_keyframes_every_n_ticks(recorded):
    with Recording.open(recorded.path) as rec:
        keys = [i for i, t in enumerate(rec.ticks()) if t.keyframe]
    assert keys == list(range(0, len(recorded.states), 4))


def test_unchanged_state_writes_nothing(tmp_path):
    clock = Clock()
    sim = SimFabric(clock=clock)
    tl = Timeline(clock=clock)
    rec = Recorder(tmp_path / "idle.atrec", flush_s=None, clock=clock)
    rec.attach(tl)
    tl.apply(sim.snapshot(T0))
    assert rec.flush() > 0
    assert rec.flush() == 0  # nothing happened since
    before = rec.blob_count
    tl.apply(sim.snapshot(T0 + 1000))  # same content, newer collection times
    idle = rec.flush()
    assert rec.blob_count == before  # no state re-stored
    sim.fail_device("leaf02")
    tl.apply(sim.snapshot(T0 + 2000))
    assert rec.flush() > idle
    assert rec.blob_count > before
    rec.close()


def test_file_mode_0600(tmp_path):
    os.umask(0o022)
    rec = Recorder(tmp_path / "m.atrec", flush_s=None)
    tl = Timeline()
    rec.attach(tl)
    tl.apply(SimFabric().snapshot(T0))
    rec.flush()
    for p in tmp_path.iterdir():  # the database and its WAL / shared-memory files
        assert stat.S_IMODE(p.stat().st_mode) == 0o600, p
    rec.close()
    assert stat.S_IMODE((tmp_path / "m.atrec").stat().st_mode) == 0o600


def test_refuses_to_overwrite(recorded):
    with pytest.raises(FileExistsError):
        Recorder(recorded.path, flush_s=None)


def test_newer_schema_refused(tmp_path, recorded):
    p = tmp_path / "new.atrec"
    p.write_bytes(recorded.path.read_bytes())
    with sqlite3.connect(p) as db:
        db.execute("UPDATE meta SET value = '99' WHERE key = 'schema_version'")
    with pytest.raises(RecordingError, match="schema version 99 is newer"):
        Recording.open(p)


def test_not_a_recording(tmp_path):
    p = tmp_path / "x.atrec"
    p.write_bytes(b"hello" * 1000)
    with pytest.raises(RecordingError, match="not a readable recording"):
        Recording.open(p)
    with pytest.raises(RecordingError, match="no such file"):
        Recording.open(tmp_path / "missing.atrec")


def _damaged_copy(tmp_path: Path, src: Path, how: str) -> Path:
    data = bytearray(src.read_bytes())
    page = 4096
    n = len(data) // page
    if how == "truncated":
        data = data[: (n * 3 // 4) * page + 1000]
    elif how == "middle":
        start = (n * 3 // 4) * page
        data[start:start + page] = bytes([0xA5]) * page
    elif how == "end":
        data[-page // 2:] = bytes(range(256)) * (page // 512)
    p = tmp_path / f"{how}.atrec"
    p.write_bytes(bytes(data))
    return p


@pytest.mark.parametrize("how", ["truncated", "middle", "end"])
def test_damaged_file_keeps_every_intact_tick(tmp_path, recorded, how):
    """Every tick recovered is the live state of its tick; the damage counts and names the rest
    (tests/unit/test_record_damage.py checks which ones, page by page)."""
    p = _damaged_copy(tmp_path, recorded.path, how)
    with Recording.open(p) as rec:
        assert rec.damage is not None and str(rec.damage).startswith("damaged: ")
        ticks = rec.ticks()
        assert 0 < len(ticks) < len(recorded.states)
        assert (rec.damage.ticks_kept, rec.damage.ticks_total) == (len(ticks), len(recorded.states))
        first_lost = next(s for s in range(1, len(recorded.states) + 1) if s not in {t.seq for t in ticks})
        assert rec.damage.seq == first_lost - 1 and "lost: " in rec.damage.reason
        for i, t in enumerate(ticks):
            assert rec.state_of_tick(i) == recorded.states[t.seq - 1]
        assert set(rec.events) <= set(recorded.events)
        assert [e.time_ms for e in rec.events] == sorted(e.time_ms for e in rec.events)


@pytest.mark.parametrize("how", ["truncated", "middle", "end"])
def test_ticks_checked_in_small_batches_stop_at_the_same_damage(tmp_path, recorded, how, monkeypatch):
    """Opening checks ticks batch by batch; a damaged batch is read again tick by tick: same place, same reason."""
    p = _damaged_copy(tmp_path, recorded.path, how)
    with Recording.open(p) as rec:
        want = (rec.ticks(), rec.events, str(rec.damage))
    for batch in (1, 2, 3):
        monkeypatch.setattr(Recording, "SCAN_BATCH", batch)
        with Recording.open(p) as rec:
            assert (rec.ticks(), rec.events, str(rec.damage)) == want
    with Recording.open(recorded.path) as rec:
        assert rec.damage is None and len(rec.ticks()) == len(recorded.states)


def test_a_damaged_tick_after_good_batches_is_named(tmp_path, recorded, monkeypatch):
    p = tmp_path / "tick.atrec"
    p.write_bytes(recorded.path.read_bytes())
    with sqlite3.connect(p) as db:
        db.execute("UPDATE ticks SET crc = crc + 1 WHERE seq = 6")
    monkeypatch.setattr(Recording, "SCAN_BATCH", 2)
    with Recording.open(p) as rec:
        assert [t.seq for t in rec.ticks()] == [1, 2, 3, 4, 5] + list(range(9, 31))  # 9: the next keyframe
        assert str(rec.damage) == ("damaged: 27 of 30 ticks recovered; tick 6 lost: fails its checksum; "
                                   "ticks 7-8 lost: changes to a lost tick (state resumes at the next keyframe)")
        c = recorded.event_counts  # events so far after each tick: tick 6's are lost with it, the others kept
        assert rec.events == recorded.events[:c[4]] + recorded.events[c[5]:]


def test_secrets_never_written(tmp_path, monkeypatch):
    secret = "hunter2-Xq9-secret-value"
    monkeypatch.setenv("ATUI_TEST_PW", secret)
    inv = parse_inventory({"device": [{"name": "leaf01", "host": "127.0.0.1", "password_env": "ATUI_TEST_PW"}]})
    p = tmp_path / "s.atrec"
    rec = Recorder(p, flush_s=None, inventory=inv,
                   settings={"interval_s": 1.0, "password": secret, "ssh": {"passphrase": secret, "token": secret}})
    tl = Timeline()
    rec.attach(tl)
    tl.apply(SimFabric().snapshot(T0))
    rec.close()
    raw = b"".join(f.read_bytes() for f in tmp_path.iterdir())
    assert secret.encode() not in raw
    with Recording.open(p) as r:
        assert r.inventory()["devices"][0]["password_env"] == "ATUI_TEST_PW"
        assert r.settings() == {"interval_s": 1.0, "ssh": {}}


def test_impact_and_whatif_notes(tmp_path):
    def impact(change):
        return {ev: {"moved": 7, "tcp_reset": 3} for ev in change.events}

    r = record_session(tmp_path / "i.atrec", ticks=6, impact=impact)
    with Recording.open(r.path) as rec:
        imp = rec.impacts()
        moved_events = [i for i, e in enumerate(rec.events) if e.time_ms > r.states[0].taken_at_ms]
        assert moved_events and all(imp[i] == {"moved": 7, "tcp_reset": 3} for i in moved_events)


def test_whatif_runs_are_kept(tmp_path):
    clock = Clock()
    tl = Timeline(clock=clock)
    rec = Recorder(tmp_path / "w.atrec", flush_s=None, clock=clock)
    rec.attach(tl)
    tl.apply(SimFabric().snapshot(T0))
    rec.record_whatif("fail leaf03", {"moved": 12, "tcp_reset": 5})
    rec.close()
    with Recording.open(tmp_path / "w.atrec") as r:
        assert r.whatifs() == [(T0, {"label": "fail leaf03", "moved": 12, "tcp_reset": 5})]
        from anycast_tui.record.report import report

        assert "| fail leaf03 | 12 | 5 |" in report(r)


def test_a_zlib_bomb_in_a_tick_or_a_data_block_is_refused_and_named(tmp_path, recorded, monkeypatch, zlib_bomb):
    monkeypatch.setattr(schema, "MAX_INFLATED", 1 << 20)  # as the 1 GiB default, at a size a test can afford
    bomb = zlib_bomb(4 << 20, b'{"e":[],"pad":"')  # a tick with no events, if it were read
    assert len(bomb) * 1032 > 1 << 20  # past what the one-call inflate may take: the bounded path
    p = tmp_path / "bomb.atrec"
    p.write_bytes(recorded.path.read_bytes())
    with sqlite3.connect(p) as db:
        (seq,) = db.execute("SELECT min(seq) FROM ticks WHERE key & 2 AND NOT key & 1 AND seq > 2").fetchone()
        db.execute("UPDATE ticks SET data = ?, crc = ? WHERE seq = ?", (bomb, zlib.crc32(bomb), seq))
    with Recording.open(p) as rec:
        assert f"tick {seq} lost: unreadable (payload inflates past 1 MiB, refused (a zlib bomb?))" in str(rec.damage)
        assert seq not in [t.seq for t in rec.ticks()]
    p2 = tmp_path / "blob.atrec"
    p2.write_bytes(recorded.path.read_bytes())
    with sqlite3.connect(p2) as db:
        (bid,) = db.execute("SELECT min(id) FROM blobs").fetchone()  # the first device's first manifest
        db.execute("UPDATE blobs SET data = ?, crc = ? WHERE id = ?", (bomb, zlib.crc32(bomb), bid))
    with Recording.open(p2) as rec:
        with pytest.raises(RecordingError, match=rf"data block {bid} unreadable \(payload inflates past 1 MiB"):
            for i in range(len(rec.ticks())):
                dict(rec.state_of_tick(i).devices.items())  # each device's state decoded (on use)
