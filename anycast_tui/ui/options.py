"""The TUI options every TUI subcommand takes (``--keymap``, ``--mono``, ``--screenshots``); no textual."""

from __future__ import annotations

import argparse
from typing import Any


def add_ui_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--keymap", metavar="TOML", help="config file whose [keymap] table rebinds keys by binding id "
                   "(default: ~/.config/anycast-tui/config.toml if present; ids are listed by ?)")
    p.add_argument("--mono", action="store_true", help="monochrome: glyphs only (NO_COLOR is honoured too)")
    p.add_argument("--screenshots", metavar="DIR",
                   help="where s saves SVG screenshots (default ~/.local/share/anycast-tui/screenshots, "
                        "beside the recordings)")


def ui_options(args: argparse.Namespace) -> dict[str, Any]:
    """AnycastApp keyword arguments from the parsed options; raises cli.CliError on a bad keymap."""
    from anycast_tui.errors import CliError
    from anycast_tui.ui.keymap import KeymapError, default_config, load_keymap

    path = args.keymap or default_config()
    try:
        keymap = load_keymap(path) if path else None
    except KeymapError as exc:
        raise CliError(str(exc)) from None
    return {"keymap": keymap, "monochrome": args.mono, "screenshot_dir": args.screenshots}
