"""NATS options shared by ``collect``, ``monitor --source`` and ``record --source`` (the only place they live)."""

from __future__ import annotations

import argparse
import asyncio
from typing import TYPE_CHECKING, Callable

if TYPE_CHECKING:  # imported when a source is opened: nats-py stays out of every other command's start-up
    from anycast_tui.fleet.conn import NatsOptions
    from anycast_tui.fleet.source import NatsSource

CONNECT_S = 20.0  # a NATS server that does not answer its first connection within this is a one-line error

SECURITY_HELP = """NATS credentials and TLS (never logged; a URL with user:password in it is refused):
  --nats-user-env VAR --nats-password-env VAR   user and password from these environment variables
  --nats-nkey FILE                              an nkey seed file
  --nats-creds FILE                             a .creds file (JWT + nkey seed)
  --nats-ca FILE [--nats-tls-cert FILE --nats-tls-key FILE]   TLS (also implied by tls://)
"""


def add_nats_arguments(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("NATS security (see README 'Fleet: collectors on NATS')")
    g.add_argument("--nats-user-env", metavar="VAR", help="environment variable holding the NATS user name")
    g.add_argument("--nats-password-env", metavar="VAR", help="environment variable holding the NATS password")
    g.add_argument("--nats-nkey", metavar="FILE", help="nkey seed file")
    g.add_argument("--nats-creds", metavar="FILE", help="NATS credentials file (.creds)")
    g.add_argument("--nats-ca", metavar="FILE", help="CA bundle to verify the NATS server's TLS certificate")
    g.add_argument("--nats-tls-cert", metavar="FILE", help="TLS client certificate")
    g.add_argument("--nats-tls-key", metavar="FILE", help="TLS client key")


def nats_options(args: argparse.Namespace, url: str, *, name: str) -> NatsOptions:
    """The NatsOptions of ``url`` and the security flags; a bad option is a one-line CliError."""
    from anycast_tui.errors import CliError
    from anycast_tui.fleet.conn import NatsConfigError, NatsOptions, parse_servers

    try:
        opts = NatsOptions(parse_servers(url), user_env=args.nats_user_env, password_env=args.nats_password_env,
                           nkey_seed=args.nats_nkey, creds=args.nats_creds, tls_ca=args.nats_ca,
                           tls_cert=args.nats_tls_cert, tls_key=args.nats_tls_key, name=name)
        opts.connect_kwargs()  # every secret and file resolvable now, before anything starts
    except NatsConfigError as exc:
        raise CliError(str(exc)) from None
    return opts


def add_source_arguments(p: argparse.ArgumentParser) -> None:
    """``--source nats://HOST:PORT`` and ``--site`` for the viewers."""
    p.add_argument("--source", metavar="nats://HOST:PORT",
                   help="read the fabric from the collectors on this NATS server (JetStream) instead of SSH: "
                   "no connection to any device")
    p.add_argument("--site", metavar="NAME", help="with --source: only this site's devices (default: every site)")


async def open_source(args: argparse.Namespace, *,
                      attach: Callable[[NatsSource], None] | None = None) -> NatsSource:
    """A started NatsSource for ``--source``; a server that cannot be reached (or does not answer within
    ``CONNECT_S``: the client would keep trying its first connection) is a one-line CliError.  ``attach`` gets
    the source before it starts (to subscribe to its timeline before the devices from KV arrive)."""
    from anycast_tui.errors import CliError
    from anycast_tui.fleet.source import NatsSource

    opts = nats_options(args, args.source, name=f"anycast-tui {args.command}")
    src = NatsSource(opts, site=args.site)
    if attach is not None:
        attach(src)
    try:
        await asyncio.wait_for(src.start(), CONNECT_S)
    except (asyncio.TimeoutError, TimeoutError):
        await src.stop()
        raise CliError(f"cannot reach NATS at {opts.shown()} within {CONNECT_S:g} s") from None
    except Exception as exc:
        text = str(exc).strip().splitlines()
        raise CliError(f"cannot reach NATS at {opts.shown()}: {type(exc).__name__}"
                       + (f": {text[0]}" if text else "")) from None
    try:  # the devices in KV and the collectors' prefixes before the trackers start (a stream not made yet: later)
        await asyncio.wait_for(src.ready.wait(), 10)
    except (asyncio.TimeoutError, TimeoutError):
        pass
    return src
