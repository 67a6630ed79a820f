"""``anycast-tui monitor -c CONFIG``: poll a live fabric over SSH and show it in the TUI."""

from __future__ import annotations

import argparse
import asyncio
import sys

from anycast_tui.commands.demo import positive_float

EXAMPLES = """examples:
  anycast-tui monitor -c config/fabric.toml                 TUI over the devices of the inventory
  anycast-tui monitor -c config/fabric.toml --interval 2    poll every 2 s (overrides poll_interval_s)
  anycast-tui monitor -c config/fabric.toml --headless 60   no TUI: print a minute of events, one a line
"""


def register(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    p = sub.add_parser("monitor", help="poll a live fabric over SSH, TUI on top",
                       description="Poll every device of an inventory (TOML) over SSH with a fixed read-only "
                       "command list, diff what changes and show it in the TUI.",
                       epilog=EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("-c", "--config", required=True, metavar="CONFIG", help="inventory file (TOML)")
    p.add_argument("--interval", type=positive_float, metavar="S",
                   help="poll every S seconds (default: the inventory's poll_interval_s)")
    p.add_argument("--headless", type=positive_float, metavar="SECONDS",
                   help="no TUI: run for SECONDS and print the events as lines")
    from anycast_tui.ui.options import add_ui_options

    add_ui_options(p)
    return p


def run(args: argparse.Namespace) -> int:
    from anycast_tui.cli import CliError
    from anycast_tui.collect.inventory import InventoryError, load_inventory

    try:
        inventory = load_inventory(args.config)
    except InventoryError as exc:
        raise CliError(str(exc)) from None
    if args.headless is None and not (sys.stdin.isatty() and sys.stdout.isatty()):
        raise CliError("the TUI needs a terminal; use --headless SECONDS to print events instead")
    if args.headless is None:
        from anycast_tui.ui.options import ui_options

        args.ui = ui_options(args)
    return asyncio.run(_main(inventory, args))


async def _main(inventory, args: argparse.Namespace) -> int:  # noqa: ANN001 - Inventory
    from anycast_tui.session import LiveSession, follow
    from anycast_tui.ui.view import event_line

    session = LiveSession(inventory, interval_s=args.interval)
    if args.headless is not None:
        print(f"monitor: {len(inventory.devices)} devices, polling every {session.interval_s:g} s "
              f"for {args.headless:g} s", flush=True)
        await follow(session, args.headless, lambda ev: print(event_line(ev), flush=True))
        return 0
    from anycast_tui.ui.app import AnycastApp

    from anycast_tui.session import ImpactTracker

    tracker = ImpactTracker(session.timeline)
    app = AnycastApp(session, title=f"anycast-tui monitor · {args.config}", impact=tracker, **args.ui)
    await session.start()
    try:
        await app.run_async()
    finally:
        tracker.close()
        await session.stop()
    return 0
