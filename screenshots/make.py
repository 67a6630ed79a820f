"""Regenerate the TUI screenshots (SVG) in this directory: ``python3 screenshots/make.py``.

The simulated fabric goes through the real parsers (SimSession) with a fixed
clock, so the pictures only change when the UI or the fabric model does.
PNGs are written beside them when ``rsvg-convert`` (librsvg2-bin) is installed.
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from anycast_tui.lab.demo import SimControls  # noqa: E402
from anycast_tui.lab.sim import SimFabric  # noqa: E402
from anycast_tui.impacttracker import ImpactTracker  # noqa: E402
from anycast_tui.session import SimSession  # noqa: E402
from anycast_tui.ui.app import AnycastApp  # noqa: E402

T0 = 1_764_000_000.0  # 2025-11-24 16:00:00 UTC
SIZES = ((80, 24), (200, 60))


class Clock:
    def __init__(self) -> None:
        self.t = T0

    def __call__(self) -> float:
        return self.t


async def shoot(size: tuple[int, int]) -> list[Path]:
    clock = Clock()
    sim = SimFabric(clock=clock)
    session = SimSession(sim, clock=clock)
    session.poll()
    clock.t += 1
    session.poll()
    tracker = ImpactTracker(session.timeline)
    app = AnycastApp(session, controls=SimControls(sim), title="anycast-tui demo", clock=clock, impact=tracker)
    w, h = size
    out: list[Path] = []

    async def save(name: str) -> None:
        await pilot.pause()
        path = HERE / f"{name}-{w}x{h}.svg"
        app.save_screenshot(path.name, str(HERE))
        out.append(path)

    async def step(seconds: float) -> None:
        clock.t += seconds
        session.poll()
        tracker.wait(60)
        app.flush()

    async with app.run_test(size=size) as pilot:
        tracker.trace(app.prefixes[0])
        await step(0)
        await save("01-fabric")
        clock.t += 0.5
        await app.toggle("leaf03")
        await step(1)
        await pilot.press("right_square_bracket", "left_square_bracket", "left_square_bracket")  # spine01's event
        await step(0)
        await save("02-leaf03-failed")
        await pilot.press("2")
        await step(0)
        await save("03-groups-bucket-bar")
        await pilot.press("3", "o")
        await step(0)
        await save("04-flows-moved")
        await pilot.press("4")
        await step(0)
        await save("05-events")
        await pilot.press("5", "down", "enter")
        await pilot.pause()
        await app.workers.wait_for_complete()
        await step(0)
        await save("06-what-if")
        await pilot.press("p", "1")
        clock.t += 0.5
        await app.toggle("leaf03")
        await step(1)
        app.tick()
        await save("07-paused")
        await pilot.press("p", "question_mark")
        await save("08-help")
    tracker.close()
    return out


async def too_small() -> Path:
    session = SimSession(SimFabric(clock=lambda: T0), clock=lambda: T0)
    app = AnycastApp(session, clock=lambda: T0)
    async with app.run_test(size=(60, 15)) as pilot:
        await pilot.pause()
        app.save_screenshot("09-too-small-60x15.svg", str(HERE))
    return HERE / "09-too-small-60x15.svg"


async def main() -> int:
    made = []
    for size in SIZES:
        made += await shoot(size)
    made.append(await too_small())
    import shutil
    import subprocess

    png = shutil.which("rsvg-convert")
    for p in made:
        print(p.relative_to(HERE.parent))
        if png:
            subprocess.run([png, str(p), "-o", str(p.with_suffix(".png"))], check=True)
    if not png:
        print("(no rsvg-convert: SVG only; apt-get install librsvg2-bin for PNGs)")
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
