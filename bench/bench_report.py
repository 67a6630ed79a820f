"""Benchmark: the postmortem report of a 24-hour recording with 1,440 incidents (one a minute).

Run: ``python3 bench/bench_report.py [--hours H] [--runs N] [--keep FILE] [--reuse FILE]``

The recording is written by the real Recorder from the simulated fabric (2 spines, 4 leaves, 4 servers) on a
fake clock, a tick every 20 s: each minute one leaf (in turn) fails and comes back 20 s later; each failure is
recorded as an incident note (``incidentlog.to_json``) holding the events the timeline found and a synthetic
impact per phase (estimated counts, live counts, a from→to matrix), as a live session's tracker writes them.
Then, in this process, each format is generated (as the command does by default: anycast timeline) ``--runs`` times from a freshly opened recording (the command's
work, without the file write): median time and output size.  Goal: HTML <= 10 s and <= 20 MB.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from anycast_tui.lab.sim import SimFabric  # noqa: E402
from anycast_tui.model.incident_impact import (IncidentImpact, ImpactCounts, LiveCounts,  # noqa: E402
                                               PhaseImpact)
from anycast_tui.model.incidents import Incident, IncidentKind  # noqa: E402
from anycast_tui.model.timeline import Timeline  # noqa: E402
from anycast_tui.record import incidentlog  # noqa: E402
from anycast_tui.record.report import HEALTH_KINDS, report  # noqa: E402
from anycast_tui.record.reader import Recording  # noqa: E402
from anycast_tui.record.writer import Recorder  # noqa: E402

T0 = 1_790_000_000_000
TICK_MS = 20_000
GOAL_S, GOAL_MB = 10.0, 20.0


class Clock:
    def __init__(self) -> None:
        self.ms = T0

    def __call__(self) -> float:
        return self.ms / 1000


def _phase(k: int, lost: tuple[str, ...], servers: tuple[str, ...]) -> PhaseImpact:
    moved = 2000 + 37 * (k % 50)
    others = [s for s in servers if s not in lost] or list(servers)
    matrix = tuple((lost[0] if lost else others[0], others[j % len(others)], moved // 3 - j) for j in range(3))
    return PhaseImpact(ImpactCounts(10_000, moved, moved // 2, moved - moved // 2, moved // 5),
                       LiveCounts(40 + k % 7, k % 11, k % 5, 0), matrix, servers, lost, (),
                       "ingress assumed: upstream ECMP over spine01, spine02", True, "10,000 synthetic flows")


def make(path: Path, hours: float) -> int:
    clock = Clock()
    sim = SimFabric(clock=clock)
    prefixes = (sim.config.anycast4, sim.config.anycast6)
    tl = Timeline(anycast_prefixes=prefixes, clock=clock)
    rec = Recorder(path, flush_s=None, clock=clock)
    rec.attach(tl)
    leaves = [n for n in sim.devices if n.startswith("leaf")]
    servers = tuple(sorted(n for n in sim.devices if n.startswith("server")))
    minutes = int(hours * 60)
    tl.apply(sim.snapshot(clock.ms))
    rec.flush()
    for k in range(minutes):
        leaf = leaves[k % len(leaves)]
        lost = (f"server{leaf[4:]}",) if f"server{leaf[4:]}" in servers else ()
        phases: list[tuple[int, tuple]] = []
        for step in range(60_000 // TICK_MS):
            clock.ms += TICK_MS
            n = len(tl.events)
            if step == 0:
                sim.fail_device(leaf)
            elif step == 1:
                sim.restore_device(leaf)
            tl.apply(sim.snapshot(clock.ms))
            if step < 2:  # what an incident holds: its anycast events and device/link health
                phases.append((clock.ms, tuple(e for e in tl.events[n:] if e.prefix in prefixes
                                               or e.kind in HEALTH_KINDS)))
            rec.flush()
        (t_on, onset), (t_off, restore) = phases
        inc = Incident(k + 1, IncidentKind.FAILURE, t_on, t_off,
                       f"{leaf} unreachable (connection refused); spine01, spine02 lost next hop {leaf}",
                       tuple(sorted({e.device for e in onset + restore})), prefixes, onset, restore,
                       f"{leaf} reachable again")
        rec.record_incident(incidentlog.to_json(inc, IncidentImpact(inc.id, _phase(k, lost, servers),
                                                                    _phase(k + 1, (), servers))))
        rec.flush()
    rec.close()
    return minutes


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--hours", type=float, default=24.0)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--keep", type=Path, help="write the recording here (kept)")
    ap.add_argument("--reuse", type=Path, help="report this recording instead of writing one")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        path = args.reuse or args.keep or Path(tmp) / "bench.atrec"
        if args.reuse is None:
            t = time.perf_counter()
            n = make(path, args.hours)
            print(f"recording: {args.hours:g} h, {n:,} incidents, {path.stat().st_size / 1e6:.1f} MB, "
                  f"written in {time.perf_counter() - t:.1f} s")
        ok = True
        for fmt in ("html", "md", "json"):
            times, size = [], 0
            for _ in range(args.runs):
                t = time.perf_counter()
                with Recording.open(path) as rec:
                    files: dict[str, str] = {}
                    text = report(rec, fmt=fmt, files=files if fmt == "md" else None, file_prefix="pm-",
                                  all_events=False)  # the command's default: the anycast timeline
                times.append(time.perf_counter() - t)
                size = len(text.encode()) + sum(len(v.encode()) for v in files.values())
            med = statistics.median(times)
            extra = f" (+ {len(files)} SVG files)" if fmt == "md" and files else ""
            verdict = ""
            if fmt == "html":
                good = med <= GOAL_S and size <= GOAL_MB * 1e6
                ok = ok and good
                verdict = f"  goal <= {GOAL_S:g} s, <= {GOAL_MB:g} MB: {'met' if good else 'MISSED'}"
            print(f"report {fmt:4}: median {med:.2f} s of {args.runs}, {size / 1e6:.2f} MB{extra}{verdict}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
