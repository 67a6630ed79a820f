"""Thin entry point: ``anycast-tui SUBCOMMAND ...``.

Each subcommand lives in ``anycast_tui.commands.<name>`` with ``register`` and
``run``; this module only dispatches and turns failures into one clear line.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys

from anycast_tui.errors import CliError  # raised by commands/ and ui/options.py (also importable from here)

# Order is the order shown in --help.
SUBCOMMANDS: tuple[str, ...] = ("demo", "monitor", "serve", "check", "calc", "whatif", "parse", "lab", "record",
                                 "collect", "replay", "report", "recordings")

# The interpreter's thread switch interval (default 5 ms).  A live command runs its event loop (SSH, NATS, the
# screen) beside worker threads (impact, incidents, health checks); each time the loop lets the GIL go (select,
# a socket read, zlib) and a worker holds it, the loop waits up to one interval to get it back.  A bus viewer
# does that thousands of times a second: with the default, its queue fell seconds behind while the workers
# computed (bench/bench_nats.py --monitor --profile); 0.5 ms gives the loop back 10x sooner.
SWITCH_INTERVAL_S = 0.0005

EPILOG = """examples:
  anycast-tui demo                       simulated fabric over real SSH on 127.0.0.1, TUI on top
  anycast-tui parse routes.json --json   normalised records of a command output
  anycast-tui SUBCOMMAND --help          help and an example for each subcommand
"""


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    """The parser of every subcommand, or of subcommand ``only`` alone (``anycast-tui calc …`` then imports
    calc's module and not the TUI's or the lab's: a whole process of calc starts faster)."""
    from anycast_tui import __version__

    parser = argparse.ArgumentParser(
        prog="anycast-tui",
        description="Terminal monitor for anycast ECMP fabrics: which flows did this event move, "
        "and which will the next one move?",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"anycast-tui {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="SUBCOMMAND")
    for name in SUBCOMMANDS if only is None else (only,):
        try:
            mod = importlib.import_module(f"anycast_tui.commands.{name}")
        except ModuleNotFoundError as exc:
            if exc.name == f"anycast_tui.commands.{name}":
                continue  # not built yet
            raise
        p = mod.register(sub)
        p.set_defaults(_run=mod.run)
    return parser


def main(argv: list[str] | None = None) -> int:
    try:
        try:
            return _dispatch(argv)
        finally:
            sys.stdout.flush()  # what is still buffered goes now (--help too), so a reader gone away shows here
    except BrokenPipeError:
        # `... | head`: the reader has what it wanted; end quietly, as a filter does on SIGPIPE, with stdout
        # pointed at /dev/null so that the interpreter's own flush at exit finds no broken pipe either.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
        return 0


def _dispatch(argv: list[str] | None) -> int:
    given = sys.argv[1:] if argv is None else argv
    parser = build_parser(given[0] if given and given[0] in SUBCOMMANDS else None)
    args = parser.parse_args(argv)
    if not getattr(args, "_run", None):
        parser.print_help()
        return 2
    sys.setswitchinterval(SWITCH_INTERVAL_S)
    try:
        return int(args._run(args) or 0)
    except CliError as exc:
        print(f"anycast-tui {args.command}: {exc}", file=sys.stderr)
        return exc.code
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":  # pragma: no cover
    # This __main__ copy catches the one CliError class the commands raise (anycast_tui.errors).
    sys.exit(main())
