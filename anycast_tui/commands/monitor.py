"""``anycast-tui monitor -c CONFIG``: poll a live fabric over SSH and show it in the TUI."""

from __future__ import annotations

import argparse
import asyncio
from typing import TYPE_CHECKING

from anycast_tui.commands.argtypes import Subcommands, interval

if TYPE_CHECKING:
    from anycast_tui.collect.inventory import Inventory
    from anycast_tui.collect.preflight import Preflight

EXAMPLES = """examples:
  anycast-tui monitor -c config/fabric.toml                 TUI over the devices of the inventory
  anycast-tui monitor -c config/fabric.toml --interval 2    poll every 2 s (overrides poll_interval_s)
  anycast-tui monitor -c config/fabric.toml --headless 60   no TUI: print a minute of events, one a line
  anycast-tui monitor -c config/fabric.toml --metrics 9464  and Prometheus metrics at 127.0.0.1:9464/metrics
  anycast-tui monitor --source nats://10.0.0.5:4222        the fabric from the collectors on NATS (`collect`):
                                                            no SSH session to any device

An encrypted private key is asked for once, on the terminal, before polling starts
(not if ssh-agent holds it); without a terminal, use ssh-agent (ssh-add KEY).
Passwords: password_env, or ask_password = true in the inventory.
"""


def register(sub: Subcommands) -> argparse.ArgumentParser:
    p = sub.add_parser("monitor", help="poll a live fabric over SSH (or read it from NATS: --source), TUI on top",
                       description="Poll every device of an inventory (TOML) over SSH with a fixed read-only "
                       "command list, diff what changes and show it in the TUI.",
                       epilog=EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("-c", "--config", metavar="CONFIG", help="inventory file (TOML); or --source")
    p.add_argument("--interval", type=interval, metavar="S",
                   help="poll every S seconds (default: the inventory's poll_interval_s)")
    from anycast_tui.commands import _fleet, _live
    from anycast_tui.ui.options import add_ui_options

    _fleet.add_source_arguments(p)
    _fleet.add_nats_arguments(p)

    _live.add_arguments(p)
    add_ui_options(p)
    return p


def run(args: argparse.Namespace) -> int:
    from anycast_tui.collect.inventory import InventoryError, load_inventory
    from anycast_tui.errors import CliError

    if (args.config is None) == (args.source is None):
        raise CliError("give one of -c CONFIG (poll over SSH) or --source nats://HOST:PORT (read the collectors)")
    if args.source is not None:
        from anycast_tui.commands._live import check_terminal

        check_terminal(args)
        return asyncio.run(_from_bus(args))
    try:
        inventory = load_inventory(args.config)
    except InventoryError as exc:
        raise CliError(str(exc)) from None
    from anycast_tui.commands._live import ask_secrets, check_terminal

    check_terminal(args)
    secrets = ask_secrets(inventory)  # passphrases on the terminal, before the TUI takes it
    return asyncio.run(_main(inventory, args, secrets))


async def _main(inventory: Inventory, args: argparse.Namespace, secrets: Preflight | None = None) -> int:
    from anycast_tui.commands._live import run_session
    from anycast_tui.session import LiveSession

    session = LiveSession(inventory, interval_s=args.interval)
    if secrets is not None:
        secrets.apply(session.poller.secrets)
    banner = (f"monitor: {len(inventory.devices)} devices, polling every {session.interval_s:g} s "
              f"for {args.headless or 0:g} s")
    return await run_session(session, args, kind="monitor", title=f"anycast-tui monitor · {args.config}",
                             banner=banner, inventory=inventory, poll_times=session.poller)


async def _from_bus(args: argparse.Namespace) -> int:
    from anycast_tui.commands._fleet import open_source
    from anycast_tui.commands._live import run_session

    source = await open_source(args)
    banner = f"monitor: reading {source.options.shown()} for {args.headless or 0:g} s"
    try:
        return await run_session(source, args, kind="monitor", title=f"anycast-tui monitor · {source.options.shown()}",
                                 banner=banner)
    finally:
        await source.stop()
