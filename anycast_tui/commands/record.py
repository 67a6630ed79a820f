"""``anycast-tui record -c CONFIG``: record a fabric without a TUI (systemd-friendly daemon)."""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

from anycast_tui.commands.argtypes import Subcommands, interval, positive_float
from anycast_tui.safetext import SafeFormatter

if TYPE_CHECKING:  # each is imported where it is used (start-up time of the other commands)
    from anycast_tui.collect.inventory import Inventory
    from anycast_tui.collect.preflight import Preflight
    from anycast_tui.fleet.source import NatsSource
    from anycast_tui.lab.sim import SimFabric
    from anycast_tui.metrics import PollTimes
    from anycast_tui.session import SimSession

EXAMPLES = """examples:
  anycast-tui record -c config/fabric.toml                 until SIGTERM, into the default directory
  anycast-tui record -c config/fabric.toml --max-age 14 --max-size 2000
                                                            keep 14 days and at most 2000 MB of recordings
  anycast-tui record --sim --sim-cycle 20 --duration 120 -o /tmp/sim.atrec
                                                            two minutes of the simulated fabric, a leaf failing
                                                            and coming back every 20 s
  anycast-tui record -c config/fabric.toml --metrics 9464  and Prometheus metrics on 127.0.0.1:9464/metrics

Started from a terminal, it asks once for each encrypted key's passphrase; as a daemon (no
terminal) it does not prompt: load the key into ssh-agent, or give passwords with password_env.
"""

log = logging.getLogger("anycast_tui.record")


def register(sub: Subcommands) -> argparse.ArgumentParser:
    p = sub.add_parser("record", help="record a fabric headless (no TUI): a session file for replay and report",
                       description="Poll a fabric like `monitor` and write every change to a session file "
                       "(keyframes + deltas, compressed, mode 0600). Logs go to stderr; SIGTERM or SIGINT stop "
                       "it cleanly (the file is flushed and closed).",
                       epilog=EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("-c", "--config", metavar="CONFIG", help="inventory file (TOML)")
    src.add_argument("--sim", action="store_true", help="record the built-in simulated fabric (in-process)")
    src.add_argument("--source", metavar="nats://HOST:PORT", help="record the fabric the collectors publish on NATS")
    p.add_argument("--site", metavar="NAME", help="with --source: only this site's devices")
    from anycast_tui.commands._fleet import add_nats_arguments

    add_nats_arguments(p)
    p.add_argument("-o", "--output", metavar="FILE", help="session file to create (default: a new file in --dir)")
    p.add_argument("--dir", metavar="DIR", type=Path,
                   help="recordings directory (default: $ANYCAST_TUI_RECORDINGS or ~/.local/share/anycast-tui/recordings)")
    p.add_argument("--interval", type=interval, metavar="S", help="poll every S seconds")
    p.add_argument("--keyframe-every", type=int, default=60, metavar="N", help="a full keyframe every N ticks (60)")
    p.add_argument("--duration", type=positive_float, metavar="S", help="stop after S seconds (default: run until stopped)")
    p.add_argument("--max-age", type=positive_float, metavar="DAYS", help="delete recordings older than DAYS")
    p.add_argument("--max-size", type=positive_float, metavar="MB", help="keep the recordings under MB in total")
    p.add_argument("--no-impact", action="store_true",
                   help="do not group incidents nor compute the flows they move, nor run the health checks")
    p.add_argument("--sim-cycle", type=positive_float, metavar="S",
                   help="with --sim: every S seconds fail a leaf, then restore it S seconds later")
    from anycast_tui.commands._live import add_metrics_argument

    add_metrics_argument(p)
    return p


def run(args: argparse.Namespace) -> int:
    from anycast_tui.errors import CliError

    if args.keyframe_every < 1:
        raise CliError("--keyframe-every must be at least 1")
    if args.sim_cycle and not args.sim:
        raise CliError("--sim-cycle needs --sim")
    inventory = None
    if args.config:
        from anycast_tui.collect.inventory import InventoryError, load_inventory

        try:
            inventory = load_inventory(args.config)
        except InventoryError as exc:
            raise CliError(str(exc)) from None
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(SafeFormatter("%(asctime)s %(levelname)s %(message)s"))  # device text escaped
    logging.basicConfig(level=logging.INFO, handlers=[handler])
    from anycast_tui.record.paths import new_session_path

    if args.output:
        path = Path(args.output)
        if path.exists():
            raise CliError(f"{path} exists; a recording never overwrites a file")
    else:
        path = new_session_path(args.dir, "sim" if args.sim else "bus" if args.source else "record")
    secrets = None
    if inventory is not None:  # asked on a terminal; a daemon (no tty) says what to use instead
        from anycast_tui.commands._live import ask_secrets

        secrets = ask_secrets(inventory, say=log.warning, unattended="record does not prompt without a terminal")
    return asyncio.run(_main(args, inventory, path, secrets))


def _prune(args: argparse.Namespace, path: Path) -> None:
    if args.max_age is None and args.max_size is None:
        return
    from anycast_tui.record.retention import prune

    gone = prune(path.parent, max_age_s=args.max_age * 86400 if args.max_age else None,
                 max_bytes=int(args.max_size * 1e6) if args.max_size else None, keep=[path])
    for p in gone:
        log.info("retention: deleted %s", p)


async def _main(args: argparse.Namespace, inventory: Inventory | None, path: Path,
                secrets: Preflight | None = None) -> int:
    from anycast_tui.record.live import incident_tracker
    from anycast_tui.record.writer import Recorder

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    interval = args.interval or (inventory.poll_interval_s if inventory else 1.0)
    settings = {"interval_s": interval, "keyframe_every": args.keyframe_every,
                "source": "sim" if args.sim else "nats" if args.source else "ssh",
                "config": str(args.config) if args.config else None}
    try:
        recorder = Recorder(path, keyframe_every=args.keyframe_every, inventory=inventory, settings=settings)
    except OSError as exc:
        from anycast_tui.errors import CliError

        raise CliError(f"cannot create {path}: {exc.strerror or exc}") from None
    log.info("recording to %s (poll every %g s)", path, interval)
    _prune(args, path)
    tasks: list[asyncio.Task] = []
    incidents = None
    metrics = None
    export = None
    checks = None
    session: SimSession | NatsSource | LiveSession
    poll_times: PollTimes | None = None  # the simulator and a bus viewer poll nothing over SSH
    try:
        if args.sim:
            from anycast_tui.lab.sim import SimFabric
            from anycast_tui.session import SimSession

            sim = SimFabric()
            session = SimSession(sim)
            recorder.attach(session.timeline)
            incidents = None if args.no_impact else incident_tracker(session.timeline, recorder)
            tasks.append(asyncio.create_task(_poll_sim(session, interval)))
            if args.sim_cycle:
                tasks.append(asyncio.create_task(_cycle(sim, args.sim_cycle)))
        elif args.source:
            from anycast_tui.commands._fleet import open_source

            session = await open_source(args)  # a NatsSource: no SSH session to any device
            recorder.attach(session.timeline)
            session.on_sampled = recorder.record_sampled  # the collectors' sampled-traffic summaries
            incidents = None if args.no_impact else incident_tracker(session.timeline, recorder)
        else:
            from anycast_tui.session import LiveSession

            live = session = LiveSession(inventory, interval_s=interval)
            poll_times = live.poller
            if secrets is not None:
                secrets.apply(live.poller.secrets)
            recorder.attach(session.timeline)
            from anycast_tui.commands._live import start_export

            export = await start_export(inventory, session.timeline, headless=True, say=log.info)
            if export is not None:
                export.on_record = recorder.record_sampled
            incidents = None if args.no_impact else incident_tracker(
                session.timeline, recorder, sampled_of=export.traffic.sampled_of if export is not None else None)
            await session.start()
        if not args.no_impact:  # health findings appearing and clearing, recorded as events (healthwatch.HealthWatch)
            from anycast_tui.healthwatch import HealthWatch

            checks = HealthWatch(session.timeline, post=loop.call_soon_threadsafe,
                                 traffic=export.traffic if export is not None else None)
        from anycast_tui.commands._live import start_metrics

        metrics = start_metrics(args, session.timeline, poller=poll_times,
                                incidents=incidents, say=log.info,
                                health=(lambda: checks.report) if checks is not None else None)
        start = time.monotonic()
        last_prune = start
        while not stop.is_set():
            left = None if args.duration is None else args.duration - (time.monotonic() - start)
            if left is not None and left <= 0:
                break
            try:
                async with asyncio.timeout(min(60.0, left) if left is not None else 60.0):
                    await stop.wait()
            except (asyncio.TimeoutError, TimeoutError):
                pass
            if time.monotonic() - last_prune > 3600:
                _prune(args, path)
                last_prune = time.monotonic()
        log.info("stopping")
    finally:
        if metrics is not None:
            metrics.close()
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if not args.sim:
            await session.stop()
        if export is not None:
            await export.stop()
            for line in export.lines():
                log.info("%s", line)
        if checks is not None:
            checks.close()
        if incidents is not None:
            await asyncio.to_thread(incidents.wait, 30)  # the newest version of every incident
            incidents.close()
        recorder.close()
    log.info("closed %s (%d bytes)", path, path.stat().st_size)
    return 0


async def _poll_sim(session: SimSession, interval: float) -> None:
    while True:
        session.poll()
        await asyncio.sleep(interval)


async def _cycle(sim: SimFabric, every: float) -> None:
    from anycast_tui.model.types import Role

    leaves = [n for n in sim.devices if sim.role(n) is Role.LEAF]
    k = 0
    while True:
        await asyncio.sleep(every)
        name = leaves[k % len(leaves)]
        log.info("sim: %s", sim.fail_device(name))
        await asyncio.sleep(every)
        log.info("sim: %s", sim.restore_device(name))
        k += 1
