"""``anycast-tui check -c CONFIG``: one poll of every device, every health check, a table or JSON, exit by severity.

Also on a recording at a moment (``--recording FILE --at T``), and on the bus (``--source nats://…``: each
device's latest state from the collectors' KV bucket, read once through ``fleet.source.NatsSource``).  The checks
are ``model.health.evaluate``'s; this module polls (the same ``LiveSession`` ``monitor --headless`` runs) or
reads, formats and picks the exit status.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as _dt
import math
from dataclasses import replace
from typing import TYPE_CHECKING, Any, Callable

from anycast_tui.commands.argtypes import Subcommands

if TYPE_CHECKING:  # each is imported where it is used (start-up time of the other commands)
    from anycast_tui.collect.inventory import Inventory
    from anycast_tui.collect.preflight import Preflight
    from anycast_tui.metrics import PollTimes
    from anycast_tui.model.health import HealthReport, ServerShare, Thresholds
    from anycast_tui.model.timeline import Change
    from anycast_tui.model.types import FabricSnapshot
    from anycast_tui.session import Session

Source = dict[str, Any]  # where the checked fabric came from, as the JSON report's "source" shows it

EXAMPLES = """examples:
  anycast-tui check -c config/fabric.toml                    one poll, a table of findings; exit 1 on an error
  anycast-tui check -c config/fabric.toml --fail-on warning  exit 1 on a warning too (a pre-change gate)
  anycast-tui check -c config/fabric.toml --json             the report as strict JSON (schema in the README)
  anycast-tui check --recording session.atrec --at 2026-11-26T14:03:00Z
                                                             the checks on the fabric as recorded then
  anycast-tui check -c config/fabric.toml --serve --metrics 9464
                                                             keep polling; the checks and the fabric as Prometheus
                                                             metrics at 127.0.0.1:9464/metrics until SIGTERM
  anycast-tui check --source nats://10.0.0.5:4222 [--site dc1]
                                                             the devices' latest states as the collectors published
                                                             them (no SSH session); --serve --metrics works too

exit status: 0 no finding at or above --fail-on (default error), 1 one or more, 2 usage error
(--serve: 0 when stopped by SIGTERM or SIGINT).
A device that did not answer is a finding (device-not-answering, error) and is named on the first line.
"""

SCHEMA = 1
SEVERITIES = ("warning", "error")


def register(sub: Subcommands) -> argparse.ArgumentParser:
    p = sub.add_parser("check", help="one poll, every health check; exit status by severity (cron, CI, change gates)",
                       description="Poll every device of an inventory once (the monitor's read-only commands) and run "
                       "every health check: server shares and imbalance, hash polarization, hash seeds and "
                       "settings per tier, hash-threshold groups in front of TCP, BGP paths against kernel next "
                       "hops, outbound and long-lived TCP on the anycast address, multi-connection protocols. "
                       "Prints the findings (severity, rule, subject, summary, fix, evidence), the server shares "
                       "and the hash settings tier by tier.",
                       epilog=EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("-c", "--config", metavar="CONFIG", help="inventory file (TOML): poll the live fabric once")
    src.add_argument("--recording", metavar="FILE", help="a session file (.atrec): check the fabric as recorded")
    src.add_argument("--source", metavar="nats://HOST:PORT",
                     help="read each device's latest state from the collectors on this NATS server (`collect`) "
                     "instead of polling: no connection to any device")
    p.add_argument("--site", metavar="NAME", help="with --source: only this site's devices (default: every site)")
    p.add_argument("--at", metavar="T", help="with --recording: the moment (ISO time, epoch ms, or +SECONDS from the "
                   "recording's start; default its end)")
    p.add_argument("--json", action="store_true", help="the report as strict JSON")
    p.add_argument("--fail-on", choices=SEVERITIES, default="error",
                   help="exit 1 when a finding is at least this severe (default: error)")
    p.add_argument("--long-lived", type=float, default=300.0, metavar="S",
                   help="TCP alive longer than S seconds is long-lived (default 300; judged across polls with "
                        "--serve: one poll cannot tell a connection's age, a recording holds no connections)")
    p.add_argument("--serve", action="store_true",
                   help="with -c (or --source) and --metrics: keep polling (reading) and serve the checks and the fabric as Prometheus "
                   "metrics until SIGTERM/SIGINT; the checks run after a change, at most every 5 s (as in "
                   "monitor), and each finding raised or cleared is printed as a line")
    from anycast_tui.commands._live import add_metrics_argument

    add_metrics_argument(p)
    from anycast_tui.commands._fleet import add_nats_arguments

    add_nats_arguments(p)
    return p


def run(args: argparse.Namespace) -> int:
    from anycast_tui.errors import CliError
    from anycast_tui.model.health import Severity, Thresholds

    if args.at is not None and args.recording is None:
        raise CliError("--at needs --recording")
    if args.site is not None and args.source is None:
        raise CliError("--site needs --source")
    if not (args.long_lived > 0 and math.isfinite(args.long_lived)):
        raise CliError("--long-lived must be a positive number of seconds")
    th = Thresholds(long_lived_s=args.long_lived)
    if args.serve or args.metrics is not None:
        if not args.serve:
            raise CliError("--metrics needs --serve (one check is over before anything could scrape it)")
        if args.metrics is None:
            raise CliError("--serve needs --metrics [ADDR:]PORT")
        if args.config is None and args.source is None:
            raise CliError("--serve needs -c CONFIG or --source nats://HOST:PORT (a live fabric)")
        if args.json:
            raise CliError("--serve prints a line per finding raised or cleared; --json is for one check")
        return _serve(args, th)
    if args.recording is not None:
        snap, report, source = _from_recording(args, th)
    elif args.source is not None:
        snap, report, source = _from_bus(args, th)
    else:
        snap, report, source = _live(args, th)
    fail = Severity.WARNING if args.fail_on == "warning" else Severity.ERROR
    worst = report.worst()
    code = 1 if worst is not None and worst >= fail else 0
    if args.json:
        from anycast_tui.commands.jsonout import emit

        emit(as_json(snap, report, source, code))
    else:
        print(table(snap, report, source), end="")
    return code


# --------------------------------------------------------------------------- sources


def _inventory(args: argparse.Namespace) -> tuple[Inventory, Preflight]:
    from anycast_tui.collect.inventory import InventoryError, load_inventory
    from anycast_tui.commands._live import ask_secrets
    from anycast_tui.errors import CliError

    try:
        inventory = load_inventory(args.config)
    except InventoryError as exc:
        raise CliError(str(exc)) from None
    return inventory, ask_secrets(inventory)


def _live(args: argparse.Namespace, th: Thresholds) -> tuple[FabricSnapshot, HealthReport, Source]:
    inventory, secrets = _inventory(args)
    snap = asyncio.run(_poll(inventory, secrets))
    from anycast_tui.model.health import evaluate

    return snap, evaluate(snap, thresholds=th), {"config": str(args.config)}


async def _poll(inventory: Inventory, secrets: Preflight | None) -> FabricSnapshot:
    """One poll of every device (a second one when an FRR device's BGP paths and kernel next hops disagree:
    reported only once seen in two polls running, as the monitor does)."""
    from anycast_tui.session import LiveSession

    session = LiveSession(inventory)
    if secrets is not None:
        secrets.apply(session.poller.secrets)
    try:
        snap = await session.poll_once()
        if snap is not None and any(st.rib_watch is not None and st.rib_watch.seen for st in snap.devices.values()):
            snap = await session.poll_once()
    finally:
        await session.stop()
    assert snap is not None  # every inventory device is on the timeline from the start (LiveSession)
    return snap


def _from_bus(args: argparse.Namespace, th: Thresholds) -> tuple[FabricSnapshot, HealthReport, Source]:
    from anycast_tui.commands._fleet import nats_options

    nats_options(args, args.source, name="anycast-tui check")  # a bad URL or secret: one line before connecting
    snap, shown = asyncio.run(_read_bus(args))
    from anycast_tui.model.health import evaluate

    return snap, evaluate(snap, thresholds=th), {"source": shown, **({"site": args.site} if args.site else {})}


async def _read_bus(args: argparse.Namespace) -> tuple[FabricSnapshot, str]:
    """Every device's latest state on the bus, once: the KV bucket read at join (``NatsSource``), then one pass
    of the source's collector watchdog (every 0.25 s), so a collector already silent has its devices stale with
    the reason, as a monitor on the bus shows them."""
    from anycast_tui.commands._fleet import open_source
    from anycast_tui.errors import CliError

    src = await open_source(args)
    try:
        if src.ready.is_set():
            await asyncio.sleep(0.5)
        snap = src.timeline.snapshot
        shown = src.options.shown()
    finally:
        await src.stop()
    if snap is None or not snap.devices:
        raise CliError(f"no device state on NATS at {shown}"
                       + (f" for site {args.site}" if args.site else "")
                       + ": no collector has published there (anycast-tui collect --publish …)", code=1)
    return answered_now(snap), shown


def answered_now(snap: FabricSnapshot) -> FabricSnapshot:
    """``snap`` with each device that did not answer its newest poll as ``check -c`` finds it: not answering,
    no tables.  The bus keeps such a device's last tables (stale, as a monitor shows them); they are not what it
    forwards with now, and one poll from ``check -c`` has none of them either."""
    from anycast_tui.model.types import DeviceState, FabricSnapshot, HealthStatus

    devices = {name: st if st.health.status is HealthStatus.OK else
               DeviceState(st.device, collected_at_ms=st.collected_at_ms, health=st.health)
               for name, st in snap.devices.items()}
    return FabricSnapshot(snap.taken_at_ms, devices, snap.anycast_prefixes)


def _serve(args: argparse.Namespace, th: Thresholds) -> int:
    if args.source is not None:
        return asyncio.run(_serve_main(args, th, None, None))
    inventory, secrets = _inventory(args)
    return asyncio.run(_serve_main(args, th, inventory, secrets))


async def _serve_main(args: argparse.Namespace, th: Thresholds, inventory: Inventory | None,
                      secrets: Preflight | None) -> int:
    """``--serve``: the monitor's LiveSession polling on (or, with ``--source``, the bus read on), its incidents,
    the checks on ``healthwatch.HealthWatch`` (as ``monitor`` runs them), all of it at /metrics; a line per
    finding raised or cleared; until SIGTERM / SIGINT."""
    import signal

    from anycast_tui.commands._live import start_metrics
    from anycast_tui.incidenttracker import IncidentTracker
    from anycast_tui.model.types import EventKind
    from anycast_tui.safetext import safe
    from anycast_tui.healthwatch import HealthWatch
    from anycast_tui.session import LiveSession
    from anycast_tui.ui.view import event_line

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    findings = (EventKind.FINDING_RAISED, EventKind.FINDING_CLEARED)
    # (incidents, checks, unsubscribe), on the timeline before its first state
    watching: list[tuple[IncidentTracker, HealthWatch, Callable[[], None]]] = []

    def on_change(change: Change) -> None:
        for ev in change.events:
            if ev.kind in findings:
                print(event_line(ev), flush=True)

    def watch(session: Session) -> None:
        watching.append((IncidentTracker(session.timeline),
                         HealthWatch(session.timeline, post=loop.call_soon_threadsafe, thresholds=th),
                         session.timeline.subscribe(on_change)))

    session: Session
    poll_times: PollTimes | None = None  # a bus viewer polls nothing
    try:
        if inventory is None:
            from anycast_tui.commands._fleet import nats_options

            shown = nats_options(args, args.source, name="anycast-tui check").shown()
            print(f"check: {safe(shown)}; reading the collectors; serving until SIGTERM", flush=True)
            from anycast_tui.commands._fleet import open_source

            session = await open_source(args, attach=watch)
        else:
            live = session = LiveSession(inventory)
            poll_times = live.poller
            if secrets is not None:
                secrets.apply(live.poller.secrets)
            watch(session)
            print(f"check: {safe(str(args.config))}; {len(inventory.devices)} devices, polling every "
                  f"{session.interval_s:g} s; serving until SIGTERM", flush=True)
        incidents, checks, _ = watching[0]
        metrics = None
        try:
            metrics = start_metrics(args, session.timeline, poller=poll_times,
                                    incidents=incidents, health=lambda: checks.report)
            await session.start()
            await stop.wait()
        finally:
            await session.stop()
            if metrics is not None:
                metrics.close()
    finally:
        if watching:
            incidents, checks, unsubscribe = watching[0]
            unsubscribe()
            checks.close()
            incidents.close()
    return 0


def _from_recording(args: argparse.Namespace, th: Thresholds) -> tuple[FabricSnapshot, HealthReport, Source]:
    from anycast_tui.errors import CliError
    from anycast_tui.model.health import evaluate
    from anycast_tui.record.reader import Recording, RecordingError
    from anycast_tui.record.timefmt import parse_time

    try:
        rec = Recording.open(args.recording)
    except RecordingError as exc:
        raise CliError(str(exc)) from None
    with rec:
        w = rec.window
        if not w:
            raise CliError(f"{args.recording}: no ticks recorded")
        try:
            t = parse_time(args.at, start_ms=w[0]) if args.at else w[1]
        except ValueError as exc:
            raise CliError(f"bad time: {exc}") from None
        try:
            snap = rec.state_at(t)
        except RecordingError as exc:
            raise CliError(str(exc)) from None
        report = evaluate(snap, thresholds=th)
        # recordings keep the devices' tables, not their live connections
        report = replace(report, notes=report.notes + (
            "a recording holds no live connections: outbound, long-lived and multi-connection TCP not judged",))
        source: Source = {"recording": str(args.recording), "at_ms": snap.taken_at_ms}
        if rec.damage is not None:
            source["damage"] = rec.damage
    return snap, report, source


# --------------------------------------------------------------------------- output


def _iso(ms: int) -> str:
    return _dt.datetime.fromtimestamp(ms / 1000, _dt.timezone.utc).isoformat(timespec="milliseconds").replace(
        "+00:00", "Z")


def answered(snap: FabricSnapshot) -> tuple[int, list[tuple[str, str]]]:
    """(devices, [(device, why) of those that did not answer their last poll])."""
    from anycast_tui.model.types import HealthStatus

    silent = [(n, st.health.error or "no answer") for n, st in snap.devices.items()
              if st.health.status is not HealthStatus.OK]
    return len(snap.devices), silent


def _finite(x: float) -> float | None:
    return x if math.isfinite(x) else None


def as_json(snap: FabricSnapshot, report: HealthReport, source: Source, code: int) -> dict[str, Any]:
    n, silent = answered(snap)
    worst = report.worst()
    prefixes = sorted({s.prefix for s in report.shares})
    return {
        "schema": SCHEMA, "source": source, "taken_at": _iso(report.taken_at_ms), "taken_at_ms": report.taken_at_ms,
        "devices": [{"name": name, "role": st.device.role.value, "status": st.health.status.value,
                     "error": st.health.error} for name, st in snap.devices.items()],
        "answered": n - len(silent), "not_answered": [name for name, _ in silent],
        "worst": worst.label if worst is not None else None, "exit": code,
        "findings": [{"rule": f.rule, "severity": f.severity.label, "subject": f.subject, "summary": f.summary,
                      "fix": f.fix, "evidence": list(f.evidence)} for f in report.findings],
        "shares": [{"prefix": s.prefix, "server": s.server, "share": s.share, "fair": s.fair, "basis": s.basis,
                    "hash_share": s.hash_share, "pps": None if s.pps is None else _finite(s.pps), "flows": s.flows}
                   for s in report.shares],
        "imbalance": {p: report.imbalance(p) for p in prefixes},
        "spreads": [{"device": sp.device, "prefix": sp.prefix, "flows": sp.flows, "ratio": _finite(sp.ratio),
                     "shares": [[h, x] for h, x in sp.shares], "uniform": [[h, x] for h, x in sp.uniform]}
                    for sp in report.spreads],
        "hash_settings": [{"device": r.device, "tier": r.tier, "policy": r.policy, "fields": r.fields,
                           "seed": r.seed, "multipath": r.multipath, "same_as": list(r.same_as)}
                          for r in report.hash_table],
        "notes": list(report.notes),
    }


def table(snap: FabricSnapshot, report: HealthReport, source: Source) -> str:
    """Plain text: who answered, the findings, the server shares, the hash settings tier by tier (device text
    escaped: one line stays one line)."""
    from anycast_tui.safetext import safe

    n, silent = answered(snap)
    if "config" in source:
        where = source["config"]
    elif "source" in source:
        where = source["source"] + (f" site {source['site']}" if "site" in source else "")
    else:
        where = f"{source.get('recording')} at {_iso(report.taken_at_ms)}"
    lines = [f"check: {safe(where)}; devices: {n - len(silent)} of {n} answered"
             + (f"; did not answer: {safe(', '.join(f'{d} ({why})' for d, why in silent))}" if silent else "")]
    if source.get("damage"):
        lines.append(f"recording damaged: {safe(source['damage'])}")
    counts = {lab: sum(1 for f in report.findings if f.severity.label == lab) for lab in ("error", "warning", "info")}
    lines.append(f"findings: {len(report.findings)} ({counts['error']} error, {counts['warning']} warning"
                 + (f", {counts['info']} info" if counts["info"] else "") + ")")
    for f in report.findings:
        lines.append(f"{f.severity.label.upper():<8} {f.rule:<28} {safe(f.subject)}")
        lines.append(f"    {safe(f.summary)}")
        lines.append(f"    fix: {safe(f.fix)}")
        lines.extend(f"      {safe(e)}" for e in f.evidence)
    by_prefix: dict[str, list[ServerShare]] = {}
    for s in report.shares:
        by_prefix.setdefault(s.prefix, []).append(s)
    for prefix, shares in by_prefix.items():
        imb = report.imbalance(prefix)
        lines.append(f"server shares of {safe(prefix)} ({safe(shares[0].basis)}; imbalance "
                     f"{'n/a' if imb is None else f'{imb:.2f}'}× fair):")
        lines.extend(f"  {safe(s.server):<16} {100 * s.share:5.1f} %  fair {100 * s.fair:5.1f} %" for s in shares)
    if report.hash_table:
        lines.append("hash settings, tier by tier (= hashes like a neighbour on an anycast path):")
        lines.append(f"  {'tier':<7} {'device':<16} policy fields  seed        multipath  same as")
        for r in report.hash_table:
            lines.append(f"  {r.tier:<7} {safe(r.device):<16} {r.policy:<6} 0x{r.fields:04x}  {r.seed:<11} "
                         f"{'yes' if r.multipath else 'no':<10} {('= ' + safe(', '.join(r.same_as))) if r.same_as else ''}"
                         .rstrip())
    lines.extend(f"note: {safe(n)}" for n in report.notes)
    return "\n".join(lines) + "\n"
