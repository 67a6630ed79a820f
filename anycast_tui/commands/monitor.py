"""``anycast-tui monitor -c CONFIG``: poll a live fabric over SSH and show it in the TUI."""

from __future__ import annotations

import argparse
import asyncio

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
    from anycast_tui.commands import _live
    from anycast_tui.ui.options import add_ui_options

    _live.add_arguments(p)
    add_ui_options(p)
    return p


def run(args: argparse.Namespace) -> int:
    from anycast_tui.cli import CliError
    from anycast_tui.collect.inventory import InventoryError, load_inventory

    try:
        inventory = load_inventory(args.config)
    except InventoryError as exc:
        raise CliError(str(exc)) from None
    from anycast_tui.commands._live import check_terminal

    check_terminal(args)
    return asyncio.run(_main(inventory, args))


async def _main(inventory, args: argparse.Namespace) -> int:  # noqa: ANN001 - Inventory
    from anycast_tui.commands._live import run_session
    from anycast_tui.session import LiveSession

    session = LiveSession(inventory, interval_s=args.interval)
    banner = (f"monitor: {len(inventory.devices)} devices, polling every {session.interval_s:g} s "
              f"for {args.headless or 0:g} s")
    return await run_session(session, args, kind="monitor", title=f"anycast-tui monitor · {args.config}",
                             banner=banner, inventory=inventory)
