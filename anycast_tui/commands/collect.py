"""``anycast-tui collect -c CONFIG --publish nats://HOST:PORT``: poll a site and publish it on NATS JetStream."""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import logging
import os
import re
import signal
import sys
from typing import TYPE_CHECKING

from anycast_tui.commands._fleet import SECURITY_HELP, add_nats_arguments, nats_options
from anycast_tui.commands.argtypes import Subcommands, interval, positive_float
from anycast_tui.safetext import SafeFormatter

if TYPE_CHECKING:  # imported where used: nats-py and the poller stay out of the other commands' start-up
    from nats.aio.client import Client as NatsClient

    from anycast_tui.collect.inventory import Inventory
    from anycast_tui.collect.preflight import Preflight
    from anycast_tui.fleet.conn import NatsOptions, Retention
    from anycast_tui.fleet.publisher import Publisher
    from anycast_tui.model.types import DeviceState

EXAMPLES = """examples:
  anycast-tui collect -c pod1.toml --publish nats://10.0.0.5:4222 --site pod1
                                   poll pod1's devices, publish their states (until SIGTERM)
  anycast-tui collect -c dc.toml --publish nats://10.0.0.5:4222 --site dc1 --shard 0/4
                                   collector 0 of 4 over one inventory (rendezvous hashing of device names)
  anycast-tui monitor --source nats://10.0.0.5:4222        a viewer: no SSH session to any device

Subjects: anycast.<site>.<device>.state | .health (| .part: pieces of a state over the server's max_payload),
anycast.<site>._collector.heartbeat | .sampled (with [flow_export]) (stream ANYCAST); latest state per device in
the KV bucket anycast_state.
""" + SECURITY_HELP

log = logging.getLogger("anycast_tui.collect")
_SITE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")


def register(sub: Subcommands) -> argparse.ArgumentParser:
    p = sub.add_parser("collect", help="poll a site headless and publish its states on NATS JetStream",
                       description="Poll every device of an inventory (or its --shard) over SSH like `monitor` and "
                       "publish each device's state changes, health and a heartbeat to NATS JetStream, and the "
                       "latest state per device to a KV bucket, for any number of viewers (`monitor --source`, "
                       "`record --source`). Logs go to stderr; SIGTERM or SIGINT stop it cleanly.",
                       epilog=EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("-c", "--config", required=True, metavar="CONFIG", help="inventory file (TOML)")
    p.add_argument("--publish", required=True, metavar="nats://HOST:PORT", help="NATS server(s), comma-separated")
    p.add_argument("--site", metavar="NAME", help="site name in the subjects (default: the inventory file's stem)")
    p.add_argument("--shard", metavar="i/N", help="poll only the devices rendezvous hashing gives collector i of N")
    p.add_argument("--interval", type=interval, metavar="S", help="poll every S seconds (default: poll_interval_s)")
    p.add_argument("--keyframe-every", type=int, default=60, metavar="N",
                   help="a device's full state at least every N state messages, and in KV every N polls (60)")
    p.add_argument("--heartbeat", type=positive_float, metavar="S",
                   help="heartbeat every S seconds (default: the poll interval, 0.5..5); viewers call the collector "
                   "silent after 3 heartbeats without a message from it")
    p.add_argument("--duration", type=positive_float, metavar="S", help="stop after S seconds")
    p.add_argument("--no-flow-export", action="store_true",
                   help="do not start the inventory's [flow_export] collector (by default it runs, and its sampled "
                   "traffic summary is published every 10 s while it receives)")
    r = p.add_argument_group("retention (when this collector creates the stream and the KV bucket)")
    r.add_argument("--stream-max-age", type=positive_float, default=86400.0, metavar="S",
                   help="keep stream messages S seconds (86400); also the KV entries' TTL")
    r.add_argument("--stream-max-bytes", type=positive_float, default=1024.0, metavar="MB",
                   help="the stream keeps at most MB megabytes, oldest dropped first (1024)")
    r.add_argument("--kv-max-bytes", type=positive_float, default=256.0, metavar="MB",
                   help="the KV bucket holds at most MB megabytes (256)")
    r.add_argument("--replicas", type=int, default=1, metavar="N",
                   help="stream and KV replicas (1); 3 in a 3-node JetStream cluster: losing one node loses nothing")
    add_nats_arguments(p)
    return p


def run(args: argparse.Namespace) -> int:
    from anycast_tui.collect.inventory import InventoryError, load_inventory
    from anycast_tui.errors import CliError
    from anycast_tui.fleet.conn import Retention
    from anycast_tui.fleet.shard import mine, parse_shard

    if args.keyframe_every < 1:
        raise CliError("--keyframe-every must be at least 1")
    if not 1 <= args.replicas <= 5:
        raise CliError("--replicas must be 1..5")
    try:
        inventory = load_inventory(args.config)
    except InventoryError as exc:
        raise CliError(str(exc)) from None
    site = args.site or os.path.splitext(os.path.basename(args.config))[0]
    if not _SITE.fullmatch(site):
        raise CliError(f"--site {site!r}: letters, digits, '_', '.', '-', at most 64")
    collector = site
    if args.shard:
        try:
            i, n = parse_shard(args.shard)
        except ValueError as exc:
            raise CliError(str(exc)) from None
        names = set(mine(inventory.names, i, n))
        inventory = dataclasses.replace(inventory, devices=tuple(d for d in inventory.devices if d.name in names))
        collector = f"{site}#{i}/{n}"
    opts = nats_options(args, args.publish, name=f"anycast-tui collect {collector}")
    retention = Retention(max_age_s=args.stream_max_age, max_bytes=int(args.stream_max_bytes * 2**20),
                          kv_max_bytes=int(args.kv_max_bytes * 2**20), replicas=args.replicas)
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(SafeFormatter("%(asctime)s %(levelname)s %(message)s"))
    logging.basicConfig(level=logging.INFO, handlers=[handler])
    logging.getLogger("asyncssh").setLevel(logging.WARNING)  # a line per SSH channel is no daemon log
    from anycast_tui.commands._live import ask_secrets

    secrets = ask_secrets(inventory, say=log.warning, unattended="collect does not prompt without a terminal")
    return asyncio.run(_main(args, inventory, site, collector, opts, retention, secrets))


async def _main(args: argparse.Namespace, inventory: Inventory, site: str, collector: str, opts: NatsOptions,
                retention: Retention, secrets: Preflight | None) -> int:
    import nats

    from anycast_tui.errors import CliError
    from anycast_tui.fleet.conn import quiet_client_logs
    from anycast_tui.fleet.publisher import Publisher
    from anycast_tui.session import LiveSession

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)

    async def disconnected() -> None:
        if stop.is_set():
            return  # our own drain at the end
        log.warning("nats: disconnected from %s (states coalesced per device until it is back)", opts.shown())

    async def reconnected() -> None:
        log.warning("nats: reconnected to %s", opts.shown())

    async def on_error(exc: Exception) -> None:
        log.debug("nats: %s", type(exc).__name__)

    quiet_client_logs()
    try:
        nc = await nats.connect(**opts.connect_kwargs(), max_reconnect_attempts=-1, reconnect_time_wait=0.5,
                                disconnected_cb=disconnected,
                                reconnected_cb=reconnected, error_cb=on_error)
    except Exception as exc:
        raise CliError(f"cannot reach NATS at {opts.shown()}: {type(exc).__name__}") from None
    session = LiveSession(inventory, interval_s=args.interval)
    if secrets is not None:
        secrets.apply(session.poller.secrets)
    every = args.heartbeat or min(max(session.interval_s, 0.5), 5.0)
    pub = Publisher(nc, site=site, collector=collector, prefixes=session.timeline.anycast_prefixes, every_s=every,
                    keyframe_every=args.keyframe_every)
    export = None
    try:
        await _ensure_stream(nc, retention, stop)
        await pub.start()
        update = session.poller.on_state

        def on_state(state: DeviceState) -> None:
            if update is not None:
                update(state)
            pub.offer(state)

        session.poller.on_state = on_state
        log.info("collect %s: %d devices from %s, polling every %g s, publishing to %s as %s",
                 collector, len(inventory.devices), args.config, session.interval_s, opts.shown(), pub.instance)
        if not args.no_flow_export:
            from anycast_tui.commands._live import start_export

            export = await start_export(inventory, session.timeline, headless=True, say=log.info)
            if export is not None:
                export.on_record = pub.offer_sampled  # the recording's summary, on the bus
        await session.start()
        if args.duration is not None:
            loop.call_later(args.duration, stop.set)
        stats = asyncio.create_task(_log_stats(pub))
        await stop.wait()
        stats.cancel()
        log.info("stopping")
    finally:
        stop.set()
        await session.stop()
        if export is not None:
            await export.stop()
            for line in export.lines():
                log.info("%s", line)
        await pub.drain(5.0)
        await pub.stop()
        try:
            await nc.drain()
        except Exception:
            pass
    log.info("stopped")
    return 0


async def _ensure_stream(nc: NatsClient, retention: Retention, stop: asyncio.Event, patience_s: float = 60.0) -> None:
    """The stream and KV bucket, tried again while JetStream is not ready (a cluster electing its leader, a
    server starting): one log line, a one-line CliError after ``patience_s``."""
    from anycast_tui.errors import CliError
    from anycast_tui.fleet.publisher import ensure_stream

    loop = asyncio.get_running_loop()
    deadline = loop.time() + patience_s
    said = False
    while True:
        try:
            await ensure_stream(nc.jetstream(), retention)
            return
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            text = str(exc).strip().splitlines()
            why = f"{type(exc).__name__}" + (f": {text[0]}" if text else "")
            if loop.time() > deadline or stop.is_set():
                raise CliError(f"cannot create stream/KV on NATS (replicas {retention.replicas}): {why}") from None
            if not said:
                log.warning("nats: JetStream not ready (%s); trying again", why)
                said = True
            await asyncio.sleep(0.5)


async def _log_stats(pub: Publisher) -> None:
    while True:
        await asyncio.sleep(60)
        s = pub.stats
        log.info("published: %d full, %d delta (%d split), %d health, %d heartbeats, %d KV, %d bytes, %d failures",
                 s.state_full, s.state_delta, s.split, s.health, s.heartbeats, s.kv_puts, s.bytes, s.failures)
