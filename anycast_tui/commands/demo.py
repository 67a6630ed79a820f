"""``anycast-tui demo``: the simulated fabric over real SSH on 127.0.0.1, with the TUI on top."""

from __future__ import annotations

import argparse
import asyncio
import sys

EXAMPLES = """examples:
  anycast-tui demo                          TUI; leaf03 fails after ~5 s and comes back; f fails/restores a leaf
  anycast-tui demo --interval 0.5           poll twice a second
  anycast-tui demo --headless 8             no TUI: print the events of 8 seconds, one a line
  anycast-tui demo --no-scenario            nothing happens unless you press f
keys: 1-5 views (fabric, groups, flows, events, what-if) · [ ] events · / filter · ? help · q quit
"""


def positive_float(text: str) -> float:
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not v > 0 or v == float("inf"):
        raise argparse.ArgumentTypeError(f"must be a positive number of seconds: {text!r}")
    return v


def register(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    p = sub.add_parser("demo", help="simulated fabric over real SSH on 127.0.0.1, TUI on top",
                       description="Start the simulated spine/leaf/server fabric, serve every device over SSH "
                       "on 127.0.0.1, poll it like a real fabric and show it in the TUI.",
                       epilog=EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--interval", type=positive_float, default=1.0, metavar="S",
                   help="poll every device every S seconds (default 1)")
    p.add_argument("--no-scenario", action="store_true", help="do not run the scripted failures")
    p.add_argument("--headless", type=positive_float, metavar="SECONDS",
                   help="no TUI: run for SECONDS and print the events as lines")
    from anycast_tui.ui.options import add_ui_options

    add_ui_options(p)
    return p


def run(args: argparse.Namespace) -> int:
    from anycast_tui.cli import CliError

    if args.headless is None and not (sys.stdin.isatty() and sys.stdout.isatty()):
        raise CliError("the TUI needs a terminal; use --headless SECONDS to print events instead")
    if args.headless is None:
        from anycast_tui.ui.options import ui_options

        args.ui = ui_options(args)
    return asyncio.run(_main(args))


async def _main(args: argparse.Namespace) -> int:
    from anycast_tui.lab.demo import DemoFabric
    from anycast_tui.session import LiveSession, follow
    from anycast_tui.ui.view import event_line

    async with DemoFabric(scenario=None if args.no_scenario else _default(), interval_s=args.interval) as fabric:
        session = LiveSession(fabric.inventory(), interval_s=args.interval)
        if args.headless is not None:
            print(f"demo: {len(fabric.devices)} devices on 127.0.0.1, polling every {args.interval:g} s "
                  f"for {args.headless:g} s", flush=True)
            await follow(session, args.headless, lambda ev: print(event_line(ev), flush=True))
            return 0
        from anycast_tui.ui.app import AnycastApp

        from anycast_tui.session import ImpactTracker

        tracker = ImpactTracker(session.timeline)
        app = AnycastApp(session, controls=fabric, title="anycast-tui demo", impact=tracker, **args.ui)
        await session.start()
        try:
            await app.run_async()
        finally:
            tracker.close()
            await session.stop()
        return 0


def _default():  # noqa: ANN202 - the scenario module's type
    from anycast_tui.lab.demo import DEFAULT

    return DEFAULT
