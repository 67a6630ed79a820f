"""ReplaySession: the recorded timeline played, paused, sped up, seeked and stepped by event."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from record_helpers import record_session  # noqa: E402

from anycast_tui.record.replay import ReplaySession  # noqa: E402
from anycast_tui.record.reader import Recording  # noqa: E402


class FakeClock:
    def __init__(self) -> None:
        self.t = 100.0

    def __call__(self) -> float:
        return self.t


@pytest.fixture(scope="module")
def recorded(tmp_path_factory):
    return record_session(tmp_path_factory.mktemp("replay") / "s.atrec", ticks=20)


@pytest.fixture
def session(recorded):
    rec = Recording.open(recorded.path)
    clock = FakeClock()
    yield ReplaySession(rec, clock=clock), clock
    rec.close()


def _matches_live(s: ReplaySession, recorded, k: int) -> None:
    assert s.timeline.snapshot == recorded.states[k]
    assert s.timeline.events == recorded.events[:recorded.event_counts[k]]


def test_opens_on_the_first_tick(session, recorded):
    s, _ = session
    assert s.window == (recorded.states[0].taken_at_ms, recorded.states[-1].taken_at_ms)
    _matches_live(s, recorded, 0)
    assert not s.playing


def test_seek_anywhere_matches_the_live_timeline(session, recorded):
    s, _ = session
    for k in (12, 3, 19, 0, 7, 8):
        s.seek(recorded.states[k].taken_at_ms + 500)
        _matches_live(s, recorded, k)
    s.seek(0)
    _matches_live(s, recorded, 0)


def test_play_at_speed_then_pause(session, recorded):
    s, clock = session
    seen = []
    s.timeline.subscribe(lambda ch: seen.extend(ch.events))
    s.set_speed(5)
    s.play()
    clock.t += 1.0  # 5 recorded seconds
    s.update()
    _matches_live(s, recorded, 5)
    assert seen == recorded.events[recorded.event_counts[0]:recorded.event_counts[5]] and seen
    s.pause()
    clock.t += 10
    assert s.update() is None
    _matches_live(s, recorded, 5)
    s.play()
    clock.t += 100  # past the end: stops there
    s.update()
    _matches_live(s, recorded, 19)
    assert s.at_end and not s.playing


def test_speed_is_clamped_and_stepped(session):
    s, _ = session
    assert s.set_speed(0.2) == 1 and s.set_speed(500) == 60
    s.set_speed(1)
    assert [s.faster() for _ in range(6)] == [2, 5, 10, 30, 60, 60]
    assert s.slower() == 30


def test_next_and_previous_event(session, recorded):
    s, _ = session
    first_event_tick = next(k for k, n in enumerate(recorded.event_counts) if n > recorded.event_counts[0])
    ev = s.next_event()
    assert ev == recorded.events[recorded.event_counts[0]]
    _matches_live(s, recorded, first_event_tick)
    s.next_event()
    second = next(k for k, n in enumerate(recorded.event_counts) if n > recorded.event_counts[first_event_tick])
    _matches_live(s, recorded, second)
    assert s.previous_event() is not None
    _matches_live(s, recorded, first_event_tick)
    s.seek(recorded.states[-1].taken_at_ms)
    assert s.next_event() is None
