"""``anycast-tui demo``: the simulated fabric over real SSH on 127.0.0.1, with the TUI on top."""

from __future__ import annotations

import argparse
import asyncio

from anycast_tui.commands.argtypes import Subcommands, interval

EXAMPLES = """examples:
  anycast-tui demo                          TUI; leaf03 fails after ~5 s and comes back; f fails/restores a leaf
  anycast-tui demo --interval 0.5           poll twice a second
  anycast-tui demo --headless 8             no TUI: print the events of 8 seconds, one a line
  anycast-tui demo --no-scenario            nothing happens unless you press f
keys: 1-5 views (fabric, groups, flows, events, what-if) · [ ] incidents (e: events) · / filter · ? help · q quit
"""


def register(sub: Subcommands) -> argparse.ArgumentParser:
    p = sub.add_parser("demo", help="simulated fabric over real SSH on 127.0.0.1, TUI on top",
                       description="Start the simulated spine/leaf/server fabric, serve every device over SSH "
                       "on 127.0.0.1, poll it like a real fabric and show it in the TUI.",
                       epilog=EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--interval", type=interval, default=1.0, metavar="S",
                   help="poll every device every S seconds (default 1)")
    p.add_argument("--no-scenario", action="store_true", help="do not run the scripted failures")
    from anycast_tui.commands import _live
    from anycast_tui.ui.options import add_ui_options

    _live.add_arguments(p)
    add_ui_options(p)
    return p


def run(args: argparse.Namespace) -> int:
    from anycast_tui.commands._live import check_terminal

    check_terminal(args)
    return asyncio.run(_main(args))


async def _main(args: argparse.Namespace) -> int:
    from anycast_tui.commands._live import run_session
    from anycast_tui.lab.demo import DEFAULT, DemoFabric
    from anycast_tui.session import LiveSession

    async with DemoFabric(scenario=None if args.no_scenario else DEFAULT, interval_s=args.interval) as fabric:
        inventory = fabric.inventory()
        session = LiveSession(inventory, interval_s=args.interval)
        banner = (f"demo: {len(fabric.devices)} devices on 127.0.0.1, polling every {args.interval:g} s "
                  f"for {args.headless or 0:g} s")
        return await run_session(session, args, kind="demo", title="anycast-tui demo", banner=banner,
                                 inventory=inventory, controls=fabric, poll_times=session.poller)
