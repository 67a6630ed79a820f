"""``anycast-tui serve``: the TUI in a browser, through textual-serve (one app process per browser tab).

textual-serve runs a shell command line per websocket connection with Textual's web driver; this module builds
that line — the ``demo`` or ``monitor`` command this package would run, every argument quoted (``shlex``) — and
serves textual-serve's own static files (JavaScript, xterm CSS, the Roboto Mono fonts) with a page of our own
(``web/app_index.html``) that loads nothing from another host: the stock page fetches its font from Google's
CDN, ours declares the bundled font files, so the browser view works with no internet.
"""

from __future__ import annotations

import argparse
import ipaddress
import shlex
import socket
import sys
from pathlib import Path

from anycast_tui.commands.argtypes import Subcommands

EXAMPLES = """examples:
  anycast-tui serve --demo                             the demo fabric at http://127.0.0.1:8000 (each tab its own demo)
  anycast-tui serve --source nats://10.0.0.5:4222      the fabric from the collectors on NATS: any number of tabs,
                                                       no session to any device
  anycast-tui serve -c config/fabric.toml              a live monitor per tab (each tab polls every device over SSH)
  anycast-tui serve --source nats://10.0.0.5:4222 --bind 127.0.0.1:8000 --public-url https://wall.example.net
                                                       behind an authenticating reverse proxy (README: Browser view)

Each browser tab is one app process (the command line `serve` prints); it ends when the tab closes.
Nothing is recorded from a tab (run `record` for that). Bound to 127.0.0.1 by default: there is no login;
put it behind a reverse proxy that authenticates (README).
"""

DEFAULT_BIND = "127.0.0.1:8000"
WEB = Path(__file__).with_name("web")  # our page: the stock one without the font CDN


def register(sub: Subcommands) -> argparse.ArgumentParser:
    p = sub.add_parser("serve", help="the TUI in a browser (textual-serve): one app process per tab",
                       description="Serve the TUI over HTTP and a websocket through textual-serve: each browser tab "
                       "runs its own `anycast-tui demo` or `anycast-tui monitor` process. The page and its "
                       "assets (JavaScript, CSS, fonts) come from this host only: it works offline.",
                       epilog=EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--demo", action="store_true", help="the simulated demo fabric (as `anycast-tui demo`)")
    src.add_argument("-c", "--config", metavar="CONFIG",
                     help="inventory file (TOML): a live monitor over SSH per tab (as `anycast-tui monitor -c`)")
    src.add_argument("--source", metavar="nats://HOST:PORT",
                     help="read the fabric from the collectors on NATS (as `monitor --source`): tabs add no "
                     "session to any device")
    p.add_argument("--site", metavar="NAME", help="with --source: only this site's devices (default: every site)")
    p.add_argument("--interval", metavar="S", help="poll every S seconds (demo, -c)")
    p.add_argument("--no-scenario", action="store_true", help="with --demo: do not run the scripted failures")
    p.add_argument("--mono", action="store_true", help="monochrome: glyphs only")
    p.add_argument("--keymap", metavar="TOML", help="config file whose [keymap] table rebinds keys")
    p.add_argument("--bind", metavar="ADDR:PORT", default=DEFAULT_BIND,
                   help=f"where to listen (default {DEFAULT_BIND}, this host only; [::1]:PORT for IPv6)")
    p.add_argument("--public-url", metavar="URL",
                   help="the URL browsers use (the page names its scripts and websocket by it): give the reverse "
                   "proxy's, e.g. https://wall.example.net (default http://ADDR:PORT of --bind)")
    p.add_argument("--title", metavar="TEXT", help="the page's title (default: the command line's subcommand)")
    from anycast_tui.commands import _fleet

    _fleet.add_nats_arguments(p)
    return p


def run(args: argparse.Namespace) -> int:
    from anycast_tui.errors import CliError

    host, port = _bind(args.bind)
    argv = app_argv(args)
    if args.public_url is not None and not args.public_url.startswith(("http://", "https://")):
        raise CliError(f"--public-url {args.public_url!r}: expected http://… or https://…")
    public = (args.public_url or f"http://{_url_host(host)}:{port}").rstrip("/")
    warning = exposure_warning(host, args.public_url)
    if warning:
        print(f"anycast-tui serve: warning: {warning}", file=sys.stderr, flush=True)
    try:
        from textual_serve.server import Server
    except ImportError:
        raise CliError("textual-serve is not installed (python3 -m pip install textual-serve)") from None
    command = shlex.join(argv)
    print(f"serve: {public}/ runs, per browser tab: {command}", flush=True)
    shown = args.config or args.source
    title = args.title or f"anycast-tui {argv[3]}" + (f" · {shown}" if shown else "")
    server = Server(command, host=host, port=port, title=title,
                    public_url=public, templates_path=WEB)
    try:
        server.serve()
    except OSError as exc:
        raise CliError(f"cannot listen on {args.bind}: {exc.strerror or exc}") from None
    return 0


def app_argv(args: argparse.Namespace) -> list[str]:
    """The command line of one tab's app process: this interpreter running this package's ``demo`` or
    ``monitor``, never recording; a bad inventory or NATS option is a one-line CliError now, not per tab."""
    from anycast_tui.errors import CliError

    argv = [sys.executable, "-m", "anycast_tui"]
    if args.source is None and args.site is not None:
        raise CliError("--site needs --source")
    if args.demo:
        argv += ["demo"] + (["--no-scenario"] if args.no_scenario else [])
    else:
        if args.no_scenario:
            raise CliError("--no-scenario goes with --demo")
        argv += ["monitor"]
        if args.config is not None:
            from anycast_tui.collect.inventory import InventoryError, load_inventory

            try:
                load_inventory(args.config)
            except InventoryError as exc:
                raise CliError(str(exc)) from None
            argv += ["-c", str(Path(args.config).resolve())]
        else:
            from anycast_tui.commands._fleet import nats_options

            nats_options(args, args.source, name="anycast-tui serve")  # refuses secrets in the URL, missing files
            argv += ["--source", args.source] + (["--site", args.site] if args.site is not None else [])
            for flag in ("nats_user_env", "nats_password_env"):
                if getattr(args, flag) is not None:
                    argv += ["--" + flag.replace("_", "-"), getattr(args, flag)]
            for flag in ("nats_nkey", "nats_creds", "nats_ca", "nats_tls_cert", "nats_tls_key"):
                if getattr(args, flag) is not None:
                    argv += ["--" + flag.replace("_", "-"), str(Path(getattr(args, flag)).resolve())]
    if args.interval is not None:
        if args.source is not None:
            raise CliError("--interval is the collectors' with --source")
        from anycast_tui.commands.argtypes import interval

        try:
            argv += ["--interval", repr(interval(args.interval))]
        except argparse.ArgumentTypeError as exc:
            raise CliError(f"--interval: {exc}") from None
    if args.mono:
        argv.append("--mono")
    if args.keymap is not None:
        argv += ["--keymap", str(Path(args.keymap).resolve())]
    return argv + ["--no-record"]


def _bind(text: str) -> tuple[str, int]:
    from anycast_tui.commands.argtypes import listen
    from anycast_tui.errors import CliError

    if ":" not in text:
        raise CliError(f"--bind {text!r}: expected ADDR:PORT (e.g. {DEFAULT_BIND})")
    try:
        host, port = listen(text)
    except argparse.ArgumentTypeError as exc:
        raise CliError(f"--bind {exc}") from None
    if port == 0:
        raise CliError("--bind: give a port (the page names it to the browser; 0 would not be known)")
    return host, port


def _url_host(host: str) -> str:
    if host in ("0.0.0.0", "::"):  # every address: the page has to name one the browsers reach
        host = socket.gethostname()
    return f"[{host}]" if ":" in host else host


def exposure_warning(host: str, public_url: str | None) -> str | None:
    """One line when ``host`` is reachable from other hosts and no proxy (``--public-url``) stands in front."""
    if public_url is not None:
        return None
    try:
        if ipaddress.ip_address(host).is_loopback:
            return None
    except ValueError:  # a name: loopback only if it is localhost
        if host == "localhost":
            return None
    return (f"{host} is reachable from other hosts and the page has no login: anyone who reaches it sees the "
            "fabric; put it behind an authenticating reverse proxy (README: Browser view) and give --public-url")
