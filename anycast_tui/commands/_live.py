"""What ``demo`` and ``monitor`` share: run a live session headless or under the TUI, recorded by default.

One computation serves both the screen and the recording: the
IncidentTracker's incidents (the end-to-end answer) and the ImpactTracker's
per-event, hop-local counts are handed to the Recorder as they come.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time
from typing import TYPE_CHECKING, Callable

from anycast_tui.record import live as record_live

if TYPE_CHECKING:  # each is imported where it is used (start-up time of the commands that do not)
    from anycast_tui.collect.inventory import Inventory
    from anycast_tui.collect.preflight import Preflight
    from anycast_tui.incidenttracker import IncidentTracker
    from anycast_tui.metrics import MetricsServer, PollTimes
    from anycast_tui.model.health import HealthReport
    from anycast_tui.model.impact import Impact
    from anycast_tui.model.timeline import Timeline
    from anycast_tui.model.types import Event
    from anycast_tui.sampledtraffic import FlowExport
    from anycast_tui.session import Session
    from anycast_tui.ui.app import Controls


def add_arguments(p: argparse.ArgumentParser) -> None:
    """--headless and the recording options (the TUI options come from ui.options)."""
    from anycast_tui.commands.argtypes import positive_float

    p.add_argument("--headless", type=positive_float, metavar="SECONDS",
                   help="no TUI: run for SECONDS and print the events as lines")
    record_live.add_arguments(p)
    add_metrics_argument(p)


METRICS_HELP = ("serve Prometheus metrics at http://ADDR:PORT/metrics (ADDR defaults to 127.0.0.1, this host "
                "only: give 0.0.0.0:PORT to be scraped from elsewhere; [::1]:PORT for IPv6). Read at scrape "
                "time; the health checks run on the session's worker after a change, at most every 5 s, "
                "never on a scrape. Metric list and alert rules: README, config/alerts.example.yml")


def add_metrics_argument(p: argparse.ArgumentParser) -> None:
    from anycast_tui.commands.argtypes import listen

    p.add_argument("--metrics", type=listen, metavar="[ADDR:]PORT", help=METRICS_HELP)


def start_metrics(args: argparse.Namespace, timeline: Timeline, *, poller: PollTimes | None = None,
                  incidents: IncidentTracker | None = None, health: Callable[[], HealthReport | None] | None = None,
                  say: Callable[[str], None] | None = None) -> MetricsServer | None:
    """The Prometheus endpoint of ``--metrics`` (None without it): a ``metrics.MetricsServer`` to ``close()``.
    ``poller``: the per-device poll times (``LiveSession.poller``; None for a session that polls nothing);
    ``health`` hands over the newest HealthReport (``healthwatch.HealthWatch.report``: the checks run there)."""
    if args.metrics is None:
        return None
    from anycast_tui.metrics import FabricCollector, serve

    server = serve(args.metrics, FabricCollector(timeline, poller=poller, incidents=incidents, health=health))
    (say or (lambda line: print(line, file=sys.stderr, flush=True)))(f"metrics: {server.url}")
    return server


def check_terminal(args: argparse.Namespace) -> None:
    from anycast_tui.errors import CliError

    web = "TEXTUAL_DRIVER" in os.environ  # `serve`: textual-serve's web driver talks over the pipes
    if args.headless is None and not web and not (sys.stdin.isatty() and sys.stdout.isatty()):
        raise CliError("the TUI needs a terminal; use --headless SECONDS to print events instead")
    if args.headless is None:
        from anycast_tui.ui.options import ui_options

        args.ui = ui_options(args)


def ask_secrets(inventory: Inventory, *, say: Callable[[str], None] | None = None,
                unattended: str = "") -> Preflight:
    """Pre-flight, before the event loop and the TUI: key passphrases and passwords asked on the terminal.

    Each encrypted key file is asked once (getpass: never echoed), unless ssh-agent holds it; with no
    terminal on stdin nothing is asked and one line per key says to use ssh-agent or password_env
    (``unattended`` is added to it).  Returns a Preflight to ``apply`` to the session's poller.
    """
    import getpass

    from anycast_tui.errors import CliError
    from anycast_tui.collect.preflight import PreflightError, agent_public_keys, preflight

    say = say or (lambda line: print(line, file=sys.stderr, flush=True))
    ask = getpass.getpass if sys.stdin.isatty() else None
    try:
        pre = preflight(inventory, ask, agent_keys=agent_public_keys, instead=unattended)
    except PreflightError as exc:
        raise CliError(str(exc)) from None
    except (KeyboardInterrupt, EOFError):
        raise CliError("no passphrase given (interrupted at the prompt)") from None
    for note in pre.notes:
        say(note)
    return pre


async def run_session(session: Session, args: argparse.Namespace, *, kind: str, title: str, banner: str,
                      inventory: Inventory | None = None, controls: Controls | None = None,
                      poll_times: PollTimes | None = None) -> int:
    """Run ``session`` (a LiveSession, or a NatsSource) until the user quits, or ``--headless`` seconds; record it
    unless told not to.  ``poll_times``: its poller's (``LiveSession.poller``), for ``--metrics``."""
    from anycast_tui.record.impactsum import summarize
    from anycast_tui.healthwatch import HealthWatch
    from anycast_tui.impacttracker import ImpactTracker
    from anycast_tui.model.timeline import Change
    from anycast_tui.safetext import safe
    from anycast_tui.ui.view import event_line, health_line, incident_line, never_answered

    settings = {"interval_s": session.interval_s, "kind": kind}
    export = await start_export(inventory, session.timeline, headless=args.headless is not None)
    try:
        rec = record_live.start(args, session.timeline, kind=kind, inventory=inventory, settings=settings)
    except BaseException:
        if export is not None:
            await export.stop()
        raise
    if export is not None and rec is not None:
        export.on_record = rec.record_sampled

    def to_recording(event: Event, prefix: str, imp: Impact) -> None:
        if rec is not None:
            rec.record_impact(event, {**summarize(imp), "prefix": prefix, **tracker.source_counts(event)})

    tracker = ImpactTracker(session.timeline, on_impact=to_recording)
    if export is not None:
        tracker.sampled = export.traffic  # the Flows view shows the busiest sampled flows beside the sample
    incidents = record_live.incident_tracker(session.timeline, rec,
                                             sampled_of=export.traffic.sampled_of if export is not None else None)
    # health findings appearing and clearing: events on the timeline (shown, printed, recorded), at most one
    # evaluation every 5 s; the timeline belongs to this loop, so the worker hands them over through it; the
    # TUI's Health view and --metrics read its newest report
    checks = HealthWatch(session.timeline, post=asyncio.get_running_loop().call_soon_threadsafe,
                         traffic=export.traffic if export is not None else None)  # shares of sampled traffic
    metrics = None
    try:
        metrics = start_metrics(args, session.timeline, poller=poll_times, incidents=incidents,
                                health=lambda: checks.report)
        if args.headless is not None:
            print(banner, flush=True)

            def on_health(change: Change) -> None:  # what no event says: a device that never answered
                before = change.before.devices if change.before is not None else {}
                for name, st in change.after.devices.items():
                    old = before.get(name)
                    if old is not st and (line := health_line(name, old.health if old else None, st.health,
                                                              change.after.taken_at_ms)):
                        print(line, flush=True)

            from anycast_tui.session import follow  # here: it imports the SSH poller (asyncssh: ~0.1 s of start-up)

            unsubscribe = session.timeline.subscribe(on_health)
            try:
                await follow(session, args.headless, lambda ev: print(event_line(ev), flush=True))
            finally:
                unsubscribe()
            await asyncio.to_thread(tracker.wait, 10)  # the last event's impact, into the recording
            await asyncio.to_thread(incidents.wait, 30)
            now_ms = int(time.time() * 1000)
            for inc in incidents.incidents():
                print(incident_line(inc, incidents.impact(inc.id), now_ms), flush=True)
            if export is not None:
                export.flush()
                for line in export.lines():
                    print(safe(line), flush=True)
            health = session.health()
            silent = never_answered(health)
            print(f"devices: {len(health) - len(silent)} of {len(health)} answered"
                  + (f"; never answered: {', '.join(silent)}" if silent else ""), flush=True)
            return 1 if silent else 0
        from anycast_tui.ui.app import AnycastApp

        app = AnycastApp(session, controls=controls, title=title, impact=tracker, incidents=incidents,
                         sampled=export.traffic if export is not None else None, health=checks, **args.ui)
        await session.start()
        try:
            await app.run_async()
        finally:
            await session.stop()
        return 0
    finally:
        if export is not None:
            await export.stop()
        if metrics is not None:
            metrics.close()
        checks.close()
        tracker.close()
        incidents.wait(30)  # the newest version of every incident, into the recording
        incidents.close()
        if rec is not None:
            rec.close()
            print(f"recorded to {rec.path}  (anycast-tui replay {rec.path})", file=sys.stderr)


async def start_export(inventory: Inventory | None, timeline: Timeline, *, headless: bool,
                       say: Callable[[str], None] | None = None) -> FlowExport | None:
    """The flow-export collector of ``[flow_export]`` (None without it), started; a socket that cannot be
    opened is a one-line CliError.  ``headless``: its lines are said (``say``, default stdout)."""
    from anycast_tui import sampledtraffic
    from anycast_tui.errors import CliError

    if inventory is None or inventory.flow_export is None:
        return None
    cfg = inventory.flow_export

    out = say or (lambda line: print(line, flush=True))

    sock = None
    try:
        if cfg.namespace:
            from anycast_tui.collect.nssocket import udp_socket

            sock = udp_socket(cfg.host, cfg.port, namespace=cfg.namespace)
        export = sampledtraffic.from_inventory(inventory, timeline, sock=sock)
        await export.start()
    except OSError as exc:
        if sock is not None:
            sock.close()
        raise CliError(f"flow export: cannot listen on {cfg.listen}"
                       f"{' in namespace ' + cfg.namespace if cfg.namespace else ''}: {exc.strerror or exc}") from None
    if headless:
        out(f"flow export: listening on {export.collector.listening} (sFlow v5, IPFIX, NetFlow v9)")
    return export
