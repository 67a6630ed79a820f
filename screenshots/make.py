"""Regenerate the TUI screenshots (SVG) in this directory: ``python3 screenshots/make.py``.

The simulated fabric goes through the real parsers (SimSession) with a fixed
clock, so the pictures only change when the UI or the fabric model does.
Convert to PNG for a quick look with ``rsvg-convert FILE.svg -o FILE.png``.
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from anycast_tui.lab.demo import SimControls  # noqa: E402
from anycast_tui.lab.sim import SimFabric  # noqa: E402
from anycast_tui.session import ImpactTracker, SimSession  # noqa: E402
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
        await save("01-steady")
        await pilot.press("3")
        await step(1)
        await save("02-leaf03-failed")
        await pilot.press("a")
        await save("03-all-events")
        await pilot.press("a", "3")
        await step(2)
        await save("04-leaf03-restored")
        await pilot.press("p", "2")
        await step(1)
        app._tick()
        await save("05-paused")
        await pilot.press("p", "question_mark")
        await save("06-help")
    tracker.close()
    return out


async def too_small() -> Path:
    session = SimSession(SimFabric(clock=lambda: T0), clock=lambda: T0)
    app = AnycastApp(session, clock=lambda: T0)
    async with app.run_test(size=(60, 15)) as pilot:
        await pilot.pause()
        app.save_screenshot("07-too-small-60x15.svg", str(HERE))
    return HERE / "07-too-small-60x15.svg"


async def main() -> int:
    made = []
    for size in SIZES:
        made += await shoot(size)
    made.append(await too_small())
    for p in made:
        print(p.relative_to(HERE.parent))
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
