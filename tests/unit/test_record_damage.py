"""Damaged recordings (issue 16 item 6): every intact tick is recovered, every loss is said, one damaged file
never stops the others.  Recordings are made by the real Recorder (record_helpers) and damaged byte-wise."""

from __future__ import annotations

import contextlib
import json
import random
import shutil
import sqlite3
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

import record_helpers  # noqa: E402
from record_helpers import Recorded, record_session  # noqa: E402

from anycast_tui.cli import main  # noqa: E402
from anycast_tui.commands.recordings import describe  # noqa: E402
from anycast_tui.record.reader import Recording, RecordingError  # noqa: E402
from anycast_tui.record.schema import unpack  # noqa: E402
from anycast_tui.record.writer import Recorder  # noqa: E402

PAGE = 4096


def impact(change):
    return {ev: {"moved": 7, "tcp_reset": 3, "flows": [f"198.51.100.{i}:{40000 + i}" for i in range(8)]}
            for ev in change.events}


@pytest.fixture(scope="module")
def with_notes(tmp_path_factory) -> Recorded:
    """45 ticks, keyframes every 4, an impact note per event (185 notes over 7 pages)."""
    return record_session(tmp_path_factory.mktemp("notes") / "s.atrec", ticks=45, impact=impact)


def pages(path: Path, table: str) -> list[tuple[int, str, int]]:
    """(page number, page type, cells) of ``table``'s b-tree pages, from SQLite's own dbstat table."""
    with sqlite3.connect(path) as db:
        return db.execute("SELECT pageno, pagetype, ncell FROM dbstat WHERE name = ? ORDER BY pageno",
                          (table,)).fetchall()


def rowids_on(path: Path, table: str, page: int) -> list[int]:
    """The rowids a leaf page holds (read with SQLite's dbstat/rowid order: the leaves' rows are contiguous)."""
    with sqlite3.connect(path) as db:
        leaves = db.execute("SELECT pageno, ncell FROM dbstat WHERE name = ? AND pagetype = 'leaf' "
                            "ORDER BY path", (table,)).fetchall()
        ids = [r[0] for r in db.execute(f"SELECT rowid FROM {table} ORDER BY rowid")]
    out, k = {}, 0
    for pg, n in leaves:
        out[pg] = ids[k:k + n]
        k += n
    return out[page]


def copy_with(tmp_path: Path, src: Path, name: str, edit) -> Path:
    data = bytearray(src.read_bytes())
    edit(data)
    p = tmp_path / name
    p.write_bytes(bytes(data))
    return p


def assert_recovered_exactly(rec: Recording, live: Recorded, seqs: list[int]) -> None:
    assert [t.seq for t in rec.ticks()] == seqs
    for i, s in enumerate(seqs):
        assert rec.state_of_tick(i) == live.states[s - 1]
        assert dict(rec.state_of_tick(i).devices.items()) == dict(live.states[s - 1].devices)


def events_of(live: Recorded, seqs) -> list:
    c = [0] + live.event_counts
    return [e for s in seqs for e in live.events[c[s - 1]:c[s]]]


# ------------------------------------------------------------------ 1: one damaged file, every file listed


def schema_scrambled(data: bytearray) -> None:
    """30 random bytes over the schema text on the first page (SQLite reports it with bytes that are not UTF-8)."""
    at = data.index(b"CREATE TABLE ticks")
    data[at:at + 30] = random.Random(30).randbytes(30)


def test_thirty_random_bytes_in_one_file_never_stop_recordings_or_report(tmp_path, with_notes, capsys):
    d = tmp_path / "recs"
    d.mkdir()
    for name in ("a.atrec", "c.atrec"):
        shutil.copyfile(with_notes.path, d / name)
    bad = copy_with(d, with_notes.path, "b.atrec", schema_scrambled)
    with pytest.raises(RecordingError, match=r"b\.atrec: not a readable recording \(.+\)"):  # was UnicodeDecodeError
        Recording.open(bad)
    assert main(["recordings", str(d)]) == 0
    out, err = capsys.readouterr()
    lines = out.splitlines()[1:]
    assert sorted(ln.split()[0] for ln in lines) == ["a.atrec", "b.atrec", "c.atrec"]
    by = {ln.split()[0]: ln for ln in lines}
    assert by["a.atrec"].endswith("  closed") and by["c.atrec"].endswith("  closed")
    assert "unreadable: not a readable recording (" in by["b.atrec"] and err == ""
    assert main(["recordings", str(d), "--json"]) == 0
    rows = {Path(r["file"]).name: r for r in json.loads(capsys.readouterr().out)}
    assert rows["a.atrec"]["events"] == rows["c.atrec"]["events"] == len(with_notes.events)
    assert rows["b.atrec"]["state"] == "unreadable" and "not a readable recording" in rows["b.atrec"]["error"]
    assert main(["report", str(d / "a.atrec")]) == 0
    assert capsys.readouterr().out.startswith("# ")
    assert main(["report", str(bad)]) == 2
    out, err = capsys.readouterr()
    assert out == "" and err.startswith("anycast-tui report: ") and "not a readable recording" in err
    assert len(err.splitlines()) == 1 and "Traceback" not in err


def test_random_bytes_anywhere_never_raise_and_what_is_recovered_is_what_was_recorded(tmp_path, with_notes):
    """30 random bytes at every 2 KB of the file: describe() always answers, every tick recovered is the live
    state of its tick, every event kept was recorded, and a loss always comes with a damage that counts it."""
    raw = with_notes.path.read_bytes()
    for off in range(0, len(raw) - 30, 2048):
        def scramble(data: bytearray, off: int = off) -> None:
            data[off:off + 30] = random.Random(off).randbytes(30)
        p = copy_with(tmp_path, with_notes.path, f"x{off}.atrec", scramble)
        assert describe(p)["state"] in ("closed", "damaged", "unreadable")
        try:
            rec = Recording.open(p)
        except RecordingError as exc:
            assert str(exc).startswith(str(p))
            continue
        with rec:
            seqs = [t.seq for t in rec.ticks()]
            for i, s in enumerate(seqs):
                assert rec.state_of_tick(i) == with_notes.states[s - 1], off
            assert set(rec.events) <= set(with_notes.events)
            if len(seqs) < 45 or len(rec.notes) < 185:
                assert rec.damage is not None, off
                assert (rec.damage.ticks_kept, rec.damage.ticks_total) == (len(seqs), 45)
            imp = rec.impacts()
            assert all(v["moved"] == 7 for v in imp.values())


# ------------------------------------------------------------------ 2: a zeroed page loses only its rows, and says so


def test_a_zeroed_notes_page_loses_its_notes_only_and_says_how_many(tmp_path, with_notes):
    leaves = [(pg, n) for pg, kind, n in pages(with_notes.path, "notes") if kind == "leaf"]
    assert len(leaves) >= 3
    pg, n = leaves[1]
    ids = rowids_on(with_notes.path, "notes", pg)
    p = copy_with(tmp_path, with_notes.path, "notes.atrec",
                  lambda d: d.__setitem__(slice((pg - 1) * PAGE, pg * PAGE), bytes(PAGE)))
    with Recording.open(p) as rec:  # was: every note gone, rec.damage None
        assert str(rec.damage) == f"damaged: all 45 ticks recovered; notes: {n} of 185 unreadable"
        assert_recovered_exactly(rec, with_notes, list(range(1, 46)))
        assert rec.events == with_notes.events
        lost_events = {i - 1 for i in ids}  # note k is the impact of event k - 1 (one note per event, in order)
        assert sorted(rec.impacts()) == [i for i in range(185) if i not in lost_events]


def test_a_zeroed_ticks_page_loses_its_ticks_and_the_deltas_until_the_next_keyframe(tmp_path, with_notes):
    leaves = [pg for pg, kind, _n in pages(with_notes.path, "ticks") if kind == "leaf"]
    pg = leaves[1]
    gone = rowids_on(with_notes.path, "ticks", pg)
    assert gone == list(range(gone[0], gone[-1] + 1)) and 1 < gone[0] and gone[-1] < 45
    p = copy_with(tmp_path, with_notes.path, "ticks.atrec",
                  lambda d: d.__setitem__(slice((pg - 1) * PAGE, pg * PAGE), bytes(PAGE)))
    resume = next(s for s in range(gone[-1] + 1, 46) if (s - 1) % 4 == 0)  # keyframes: ticks 1, 5, 9, ...
    kept = [s for s in range(1, 46) if s < gone[0] or s >= resume]
    with Recording.open(p) as rec:
        assert_recovered_exactly(rec, with_notes, kept)
        lost_deltas = f"; ticks {gone[-1] + 1}-{resume - 1} lost: changes to a lost tick (state resumes at the " \
                      f"next keyframe)" if resume > gone[-1] + 1 else ""
        lost_ev = len(events_of(with_notes, gone))
        assert str(rec.damage) == (
            f"damaged: {len(kept)} of 45 ticks recovered; ticks {gone[0]}-{gone[-1]} lost: page damaged "
            f"(database disk image is malformed){lost_deltas}; impact notes: {lost_ev} of 185 name an event that "
            f"was lost or cannot be placed")
        assert rec.damage.seq == gone[0] - 1
        # the events of the deltas that cannot be shown are intact and kept; so is every impact of a kept event
        assert rec.events == events_of(with_notes, [s for s in range(1, 46) if s not in gone])
        imp = rec.impacts()
        assert len(imp) == 185 - lost_ev and all(rec.events[i] in with_notes.events for i in imp)


def needed_blocks(path: Path) -> list[set[int]]:
    """The data blocks each tick's state is built from (manifests and what they name), read from an intact file."""
    out = []
    with Recording.open(path) as rec, contextlib.closing(sqlite3.connect(path)) as db:
        for i in range(len(rec.ticks())):
            ids: set[int] = set()
            for mid in rec.manifests_of_tick(i).values():
                (data,) = db.execute("SELECT data FROM blobs WHERE id = ?", (mid,)).fetchone()
                _dev, _hs, ifs, nh, chunks, *more = unpack(data)
                ids |= {mid, ifs, nh, *chunks} | ({*more[0][0], more[0][1]} if more else set())
            out.append(ids)
    return out


@pytest.mark.parametrize("which", ["middle", "last"])
def test_a_zeroed_data_block_page_loses_exactly_the_ticks_that_need_its_blocks(tmp_path, which):
    live = record_session(tmp_path / "s.atrec", ticks=30)
    with sqlite3.connect(live.path) as db:
        leaves = [r[0] for r in db.execute("SELECT pageno FROM dbstat WHERE name = 'blobs' AND pagetype = 'leaf' "
                                           "ORDER BY path")]
    pg = leaves[-1] if which == "last" else leaves[-3]
    ids = rowids_on(live.path, "blobs", pg)
    lost = [s for s, need in enumerate(needed_blocks(live.path), 1) if need & set(ids)]
    assert lost and len(lost) < 30
    p = copy_with(tmp_path, live.path, "blobs.atrec",
                  lambda d: d.__setitem__(slice((pg - 1) * PAGE, pg * PAGE), bytes(PAGE)))
    with Recording.open(p) as rec:
        assert_recovered_exactly(rec, live, [s for s in range(1, 31) if s not in lost])
        assert lost == list(range(lost[0], lost[-1] + 1))  # here one stretch: the blocks of a few ticks
        blocks = f"after {ids[0] - 1}" if which == "last" else f"{ids[0]}-{ids[-1]}"
        assert str(rec.damage) == (f"damaged: {30 - len(lost)} of 30 ticks recovered; ticks {lost[0]}-{lost[-1]} "
                                   f"lost: a data block needed is damaged; data blocks {blocks} unreadable")
        assert rec.events == live.events  # every tick row is intact: no event is lost
    (row,) = [r for r in [describe(p)] if r["state"] == "damaged"]  # the listing says it too
    assert row["damage"] == str(rec.damage) and row["ticks"] == 30 - len(lost)


# ------------------------------------------------------------------ 3: truncated files and -wal sidecars


def test_a_closed_file_cut_at_28_kb_keeps_its_events_and_says_why_no_state_is_left(tmp_path):
    live = record_session(tmp_path / "s.atrec", ticks=4)
    assert live.path.stat().st_size == 48 * 1024
    p = copy_with(tmp_path, live.path, "cut.atrec", lambda d: d.__delitem__(slice(28 * 1024, None)))
    with Recording.open(p) as rec:
        assert rec.ticks() == []
        assert pages(live.path, "blobs")[1][0] == 7  # the last page kept holds the first data blocks
        first = rowids_on(live.path, "blobs", 7)[-1]
        assert str(rec.damage) == ("damaged: 0 of 4 ticks recovered; ticks 1-4 lost: a data block needed is "
                                   f"damaged; data blocks after {first} unreadable")
        assert rec.events == live.events  # the tick rows themselves are intact


@pytest.mark.parametrize("keep_pages", [7, 9, 12, 15, 18])
def test_a_closed_file_cut_anywhere_keeps_every_tick_whose_rows_survive(tmp_path, keep_pages):
    live = record_session(tmp_path / "s.atrec", ticks=30)
    p = copy_with(tmp_path, live.path, "cut.atrec", lambda d: d.__delitem__(slice(keep_pages * PAGE + 100, None)))
    with Recording.open(p) as rec:
        seqs = [t.seq for t in rec.ticks()]
        assert_recovered_exactly(rec, live, seqs)
        assert rec.damage is not None and rec.damage.ticks_kept == len(seqs) and rec.damage.ticks_total == 30
        assert str(rec.damage).startswith(f"damaged: {len(seqs)} of 30 ticks recovered; ")


class _Killed(Recorder):
    """A recorder killed -9 after its last commit: its files are copied as they are, before close()."""

    def close(self) -> None:
        dest = self.path.parent / "killed"
        dest.mkdir(exist_ok=True)
        for suffix in ("", "-wal"):
            shutil.copyfile(f"{self.path}{suffix}", dest / f"{self.path.name}{suffix}")
        super().close()


def killed(tmp_path: Path, monkeypatch, ticks: int, keyframe_every: int) -> tuple[Recorded, Path]:
    monkeypatch.setattr(record_helpers, "Recorder", _Killed)
    live = record_session(tmp_path / "s.atrec", ticks=ticks, keyframe_every=keyframe_every)
    return live, tmp_path / "killed" / "s.atrec"


def with_wal(tmp_path: Path, src: Path, name: str, frac: float | None) -> Path:
    d = tmp_path / name
    d.mkdir()
    shutil.copyfile(src, d / src.name)
    if frac is not None:
        wal = Path(f"{src}-wal").read_bytes()
        (d / f"{src.name}-wal").write_bytes(wal[:int(len(wal) * frac)])
    return d / src.name


@pytest.mark.parametrize("frac", [1.0, 0.9, 0.75, 0.5])
def test_a_killed_recording_keeps_every_tick_up_to_its_last_keyframe_whatever_its_wal(tmp_path, monkeypatch, frac):
    """Was: 17 ticks, -wal cut to 90/75/50 % -> 11/5/0 ticks, silently.  Checkpointed at every keyframe now:
    the 17th tick is one, so all 17 are in the .atrec itself."""
    live, src = killed(tmp_path, monkeypatch, 17, 4)
    with Recording.open(with_wal(tmp_path, src, "w", frac)) as rec:
        assert_recovered_exactly(rec, live, list(range(1, 18)))
        assert rec.events == live.events
        assert rec.damage is None or str(rec.damage).startswith("damaged: all 17 ticks recovered; the -wal sidecar "
                                                                "is cut short (")


def test_the_atrec_alone_of_a_killed_recording_loses_at_most_one_keyframe_interval(tmp_path, monkeypatch):
    """Was: 'not a readable recording' (everything sat in the -wal)."""
    live, src = killed(tmp_path, monkeypatch, 19, 4)  # keyframes at 1, 5, 9, 13, 17
    alone = with_wal(tmp_path, src, "alone", None)
    with Recording.open(alone) as rec:
        assert_recovered_exactly(rec, live, list(range(1, 18)))
        assert str(rec.damage) == ("damaged: all 17 ticks recovered; not closed and without its -wal sidecar: what "
                                   "was written after the last keyframe (at most 4 ticks) is lost")
    with Recording.open(with_wal(tmp_path, src, "whole", 1.0)) as rec:  # with its -wal: every tick, no damage
        assert_recovered_exactly(rec, live, list(range(1, 20)))
        assert rec.damage is None


@pytest.mark.parametrize("frac", [0.9, 0.75, 0.5])
def test_a_wal_cut_short_gives_every_tick_its_whole_pages_hold_and_says_it_was_cut(tmp_path, monkeypatch, frac):
    """Keyframes only every 100 ticks: ticks 2-17 live in the -wal alone.  SQLite reads a cut -wal up to its last
    complete commit; the whole pages after it are read too (every row checked against its CRC)."""
    live, src = killed(tmp_path, monkeypatch, 17, 100)
    p = with_wal(tmp_path, src, "cut", frac)
    plain = tmp_path / "sqlite" / "s.atrec"  # what SQLite alone makes of the same files
    plain.parent.mkdir()
    shutil.copyfile(p, plain)
    shutil.copyfile(f"{p}-wal", f"{plain}-wal")
    with sqlite3.connect(f"file:{plain}?mode=ro", uri=True) as db:
        by_sqlite = db.execute("SELECT count(*) FROM ticks").fetchone()[0]
    with Recording.open(p) as rec:
        seqs = [t.seq for t in rec.ticks()]
        assert seqs == list(range(1, len(seqs) + 1)) and by_sqlite <= len(seqs) < 17
        assert_recovered_exactly(rec, live, seqs)
        assert rec.events == events_of(live, seqs)
        rest = (int(Path(f"{src}-wal").stat().st_size * frac) - 32) % (PAGE + 24)  # 32-byte header, 24 a frame
        assert str(rec.damage).endswith(f"; the -wal sidecar is cut short ({rest} bytes of a page left): what it "
                                        "held after its last whole page is lost")


def test_the_recorder_checkpoints_at_every_keyframe(tmp_path, monkeypatch):
    """The .atrec alone holds every keyframe's tick as soon as it is committed (not only at close)."""
    sizes = []

    class Watch(Recorder):
        def flush(self) -> int:
            n = super().flush()
            alone = tmp_path / "alone" / f"{self._seq}.atrec"
            alone.parent.mkdir(exist_ok=True)
            shutil.copyfile(self.path, alone)
            sizes.append(self._seq)
            return n

    monkeypatch.setattr(record_helpers, "Recorder", Watch)
    record_session(tmp_path / "s.atrec", ticks=10, keyframe_every=4)
    got = {}
    for seq in sizes:
        with Recording.open(tmp_path / "alone" / f"{seq}.atrec") as rec:
            got[seq] = len(rec.ticks())
    assert got == {1: 1, 2: 1, 3: 1, 4: 1, 5: 5, 6: 5, 7: 5, 8: 5, 9: 9, 10: 9}


def test_a_wal_caught_while_its_recorder_writes_a_page_is_not_called_cut(tmp_path, monkeypatch):
    """A reader can find a live recording's -wal with half a frame written: when the -wal has grown by the time
    its whole pages are read, a recorder is writing it; SQLite reads it as it then is, and nothing is damaged."""
    live, src = killed(tmp_path, monkeypatch, 17, 100)
    p = with_wal(tmp_path, src, "live", 0.9)
    whole = Path(f"{src}-wal").read_bytes()

    def recorder_writes_on() -> None:  # the recorder completes its frames while the cut -wal is read
        Path(f"{p}-wal").write_bytes(whole)

    with Recording.open(p, wal_pages_read=recorder_writes_on) as rec:
        assert rec.damage is None
        assert_recovered_exactly(rec, live, list(range(1, 18)))
