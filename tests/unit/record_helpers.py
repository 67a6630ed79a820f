"""Shared by the recorder tests: a scripted simulated session recorded tick by tick."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from anycast_tui.lab.sim import SimConfig, SimFabric
from anycast_tui.model.types import Event, FabricSnapshot
from anycast_tui.record.live import incident_tracker
from anycast_tui.record.writer import Recorder
from anycast_tui.model.timeline import Timeline

T0 = 1_790_000_000_000  # ms
SCRIPT = {3: ("fail_device", "leaf02"), 6: ("withdraw", "server03"), 9: ("restore_device", "leaf02"),
          12: ("announce", "server03"), 15: ("fail_link", "spine01", "leaf01")}


class Clock:
    def __init__(self, t_ms: int = T0) -> None:
        self.ms = t_ms

    def __call__(self) -> float:
        return self.ms / 1000


@dataclass
class Recorded:
    path: Path
    states: list[FabricSnapshot] = field(default_factory=list)  # live snapshot at each tick
    events: list[Event] = field(default_factory=list)
    event_counts: list[int] = field(default_factory=list)  # live events so far, at each tick


def record_session(path: Path, *, ticks: int = 18, keyframe_every: int = 4, resilient: bool = True,
                   incidents: bool = False, **recorder_kw) -> Recorded:
    """Update every device of the simulated fabric once a (fake) second, run SCRIPT, flush a tick after each poll
    (``incidents``: with the live session's incident tracker recording into it)."""
    clock = Clock()
    sim = SimFabric(SimConfig(resilient=resilient), clock=clock)
    timeline = Timeline(anycast_prefixes=("192.0.2.53/32",), clock=clock)
    rec = Recorder(path, keyframe_every=keyframe_every, flush_s=None, clock=clock, **recorder_kw)
    rec.attach(timeline)
    tracker = incident_tracker(timeline, rec) if incidents else None
    out = Recorded(path)
    for i in range(ticks):
        if i in SCRIPT:
            action, *args = SCRIPT[i]
            sim.apply(action, *args)
        for k, name in enumerate(sim.devices):  # one update per device, as the poller does
            timeline.update(sim.device_state(name, clock.ms - 40 + k))
        if tracker is not None:
            assert tracker.wait(120)
        rec.flush()
        out.states.append(timeline.snapshot)
        out.event_counts.append(len(timeline.events))
        clock.ms += 1000
    out.events = list(timeline.events)
    if tracker is not None:
        tracker.close()
    rec.close()
    return out
