"""Postmortem of a recording: Markdown, one self-contained HTML file, or versioned JSON.

The unit is the **incident** (``model.incidents``: the events of one cause, with
the end-to-end impact the monitor computed, ``model.incident_impact``), read
from the recording's own incident notes or, for files written before them,
rebuilt from its ticks (``record.incidentlog.of_recording``; the report says which).

Sections: a table of contents; the summary (window, devices, incidents, the
measured and the estimated impact apart, the worst incident by live TCP resets
then estimated moved flows, whether the ingress was assumed); the incidents in
time order; placement quality per device; the event timeline (anycast events and
device/link health only, unless ``all_events``); then per incident its onset and
restore events, its impact per phase, the from→to server matrix and the ECMP
groups that changed, before/after (``groups`` block: drawn as SVG by
``report_svg`` at render time — inline in HTML, files beside the Markdown when it
is written to a file, else a table).

The report is built as blocks of plain text (device text is data: every
renderer escapes all of it), scrubbed as text if asked, then rendered.
``report_json`` is the same content as data (``REPORT_SCHEMA``, README).
"""

from __future__ import annotations

import html
import json
import re
from collections import Counter
from dataclasses import dataclass
from typing import Any, Sequence

from anycast_tui.model.events import nexthop_label
from anycast_tui.model.health import open_findings
from anycast_tui.model.incident_impact import (PhaseImpact, counts_json, live_json, phase_text, resilient_text,
                                               sampled_json)
from anycast_tui.model.types import DeviceState, Event, EventKind, FabricSnapshot
from anycast_tui.model.views import device_quality
from anycast_tui.record import incidentlog
from anycast_tui.record.incidentlog import RecordedIncident
from anycast_tui.record.scrub import Scrubber
from anycast_tui.record.reader import Recording
from anycast_tui.record.timefmt import iso

REPORT_SCHEMA = 1
MAX_DETAIL = 200  # incidents described in detail (the most impactful, shown in time order)
MAX_PICTURES = 60  # incidents with pictures of their groups (the most impactful)
MAX_PICTURE_DEVICES = 12
HEALTH_KINDS = frozenset({EventKind.DEVICE_UNREACHABLE, EventKind.DEVICE_BACK, EventKind.LINK_DOWN,
                          EventKind.LINK_UP})
REBUILT = "rebuilt from the recording's ticks (the file has no incident notes; coarser than live)"
RECORDED = "as the monitor computed them (the recording's incident notes)"


@dataclass
class Block:
    kind: str  # h1 h2 h3 p table groups toc
    text: str = ""
    headers: Sequence[str] = ()
    rows: Sequence[Sequence[str]] = ()
    name: str = ""  # groups: file name of its picture
    anchor: str = ""  # h2/h3: the id the table of contents links to (generated, never device text)


# --------------------------------------------------------------------------- ECMP views


def ecmp_rows(state: DeviceState | None, prefix: str | None = None, group_id: int | None = None) -> list[list[str]]:
    """[next hop, weight, share] of the device's route to ``prefix`` (or nexthop group ``group_id``)."""
    if state is None:
        return []
    g = None
    if group_id is None:
        route = next((r for r in state.routes if r.dst == prefix and r.table == "main"), None) \
            or next((r for r in state.routes if r.dst == prefix), None)
        if route is None:
            return []
        if route.nhid is None:
            live = [nh for nh in route.nexthops if not nh.dead and not nh.linkdown]
            total = sum(nh.weight for nh in live) or 1
            return [[nexthop_label(nh) + (f" ({' '.join(nh.flags)})" if nh.flags else ""), str(nh.weight),
                     f"{100 * nh.weight / total:.1f}%" if nh in live else "0%"] for nh in route.nexthops]
        group_id = route.nhid
    g = state.group(group_id)
    if g is None:
        return []
    objects = {o.id: o for o in state.nexthops.objects}
    counts = Counter(b.nhid for b in g.bucket_table)
    total_w = sum(m.weight for m in g.members) or 1
    rows = []
    for m in g.members:
        o = objects.get(m.id)
        label = f"id {m.id}" + (f" via {o.gateway}" if o and o.gateway else "") + (f" dev {o.dev}" if o and o.dev else "")
        share = (f"{100 * counts[m.id] / len(g.bucket_table):.1f}% ({counts[m.id]}/{len(g.bucket_table)} buckets)"
                 if g.bucket_table else f"{100 * m.weight / total_w:.1f}%")
        rows.append([label, str(m.weight), share])
    return rows


def changed_groups(before: FabricSnapshot | None, after: FabricSnapshot | None, prefixes: Sequence[str],
                   first: Sequence[str] = (), limit: int = MAX_PICTURE_DEVICES) -> list[list[str]]:
    """[device, before|after, next hop, weight, share] of every device whose group for one of ``prefixes``
    changed between the two snapshots (devices in ``first`` first; at most ``limit`` device-prefix pairs).
    The prefix is appended to the device name when there are several."""
    names = list(dict.fromkeys([*first, *(after.devices if after else ()), *(before.devices if before else ())]))
    out: list[list[str]] = []
    n = 0
    for p in prefixes:
        for name in names:
            sb = before.devices.get(name) if before else None
            sa = after.devices.get(name) if after else None
            if sb is sa:
                continue
            rb, ra = ecmp_rows(sb, p), ecmp_rows(sa, p)
            if rb == ra:
                continue
            if n == limit:
                return out
            n += 1
            dev = f"{name} {p}" if len(prefixes) > 1 else name
            out += [[dev, "before", *r] for r in rb] + [[dev, "after", *r] for r in ra]
    return out


# --------------------------------------------------------------------------- building


def _dur(ms: int) -> str:
    s = ms // 1000
    return f"{s // 3600}h{s % 3600 // 60:02d}m{s % 60:02d}s" if s >= 3600 else f"{s // 60}m{s % 60:02d}s"


def _phases(ri: RecordedIncident) -> list[tuple[str, PhaseImpact]]:
    imp = ri.impact
    if imp is None:
        return []
    return [(name, p) for name, p in (("onset", imp.onset), ("restore", imp.restore)) if p is not None]


def _live_tcp(ri: RecordedIncident) -> int:
    return sum(p.live.tcp_reset for _, p in _phases(ri) if p.live is not None)


def _moved(ri: RecordedIncident) -> int:
    return sum(p.estimated.moved for _, p in _phases(ri))


def _rank(ri: RecordedIncident) -> tuple:
    """Impact order: live (measured) TCP resets, then estimated moved flows; the earlier wins a tie."""
    return (_live_tcp(ri), _moved(ri), -ri.incident.start_ms, -ri.incident.id)


def _short(p: PhaseImpact) -> str:
    e = p.estimated
    return f"{e.moved:,} moved: {e.tcp_reset:,} TCP reset, {e.udp_moved:,} UDP"


def _live_short(p: PhaseImpact) -> str:
    lv = p.live
    if lv is None:
        return "no live source"
    udp = "UDP n/a" if lv.udp_moved is None else f"{lv.udp_moved:,} UDP"
    return f"{lv.tcp_reset:,} TCP reset, {udp} of {lv.connections:,} connections"


def _per_phase(ri: RecordedIncident, fmt) -> str:  # noqa: ANN001 - PhaseImpact -> str
    phases = _phases(ri)
    if not phases:
        return "not computed"
    if len(phases) == 1 and phases[0][0] == "onset":
        return fmt(phases[0][1])
    return "; ".join(f"{name}: {fmt(p)}" for name, p in phases)


def _totals(incidents: Sequence[RecordedIncident]) -> list[list[str]]:
    """Summary rows: measured (live) and estimated impact over every phase of every incident."""
    phases = [p for ri in incidents for _, p in _phases(ri)]
    live = [p.live for p in phases if p.live is not None]
    rows = []
    if live:
        known = [lv.udp_moved for lv in live if lv.udp_moved is not None]
        udp = (f"{sum(known):,} UDP moves" if len(known) == len(live) else
               "UDP moves unknown (no conntrack)" if not known else
               f"{sum(known):,} UDP moves where conntrack shows them (UDP unknown on {len(live) - len(known)} of "
               f"{len(live)} phases)")
        rows.append(["Measured impact (live)",
                     f"{sum(lv.tcp_reset for lv in live):,} TCP resets, {udp}, measured on "
                     f"{sum(lv.connections for lv in live):,} live connections"])
    else:
        rows.append(["Measured impact (live)", "none: no device reported live connections (no flow source)"])
    if phases:
        samples = sorted({p.sample for p in phases})
        rows.append(["Estimated impact",
                     f"{sum(p.estimated.moved for p in phases):,} flows moved: "
                     f"{sum(p.estimated.tcp_reset for p in phases):,} TCP resets, "
                     f"{sum(p.estimated.udp_moved for p in phases):,} UDP moves, "
                     f"{sum(p.estimated.collateral for p in phases):,} collateral — estimated from "
                     f"{' / '.join(samples)} per incident phase, not real clients"])
    assumed = sorted({p.ingress for p in phases if p.ingress_assumed})
    if assumed:
        rows.append(["Ingress", "; ".join(assumed)])
    return rows


def _bounds(rec: Recording, w: tuple[int, int], t0: int | None, t1: int | None) -> tuple[int, int]:
    """[lo, hi] of the report: [t0, t1] within the recording (default: all of it)."""
    # events of the first tick may predate it (a tick holds what changed since the previous one)
    first = min([w[0]] + [e.time_ms for e in rec.events[:1]])
    return (t0 if t0 is not None else first), min(t1 if t1 is not None else w[1], w[1])


def _incidents_in(rec: Recording, lo: int, hi: int, incidents: tuple[list[RecordedIncident], bool] | None
                  ) -> tuple[list[RecordedIncident], bool]:
    """(incidents overlapping [lo, hi], recorded) — see ``incidentlog.of_recording``."""
    all_incs, recorded = incidents if incidents is not None else incidentlog.of_recording(rec)
    return [ri for ri in all_incs if ri.incident.start_ms <= hi
            and (ri.incident.end_ms is None or ri.incident.end_ms >= lo)], recorded


def _anycast(rec: Recording, lo: int, hi: int) -> set[str]:
    return set(rec.state_at(lo).anycast_prefixes) | set(rec.state_at(hi).anycast_prefixes)


def build(rec: Recording, *, t0: int | None = None, t1: int | None = None, pictures: bool = True,
          max_detail: int = MAX_DETAIL, all_events: bool = True,
          incidents: tuple[list[RecordedIncident], bool] | None = None) -> list[Block]:
    """The report's blocks for [t0, t1] (default: the whole recording).  ``all_events`` False: the timeline
    keeps anycast events and device/link health only.  ``incidents``: ``incidentlog.of_recording(rec)``."""
    w = rec.window
    out: list[Block] = [Block("h1", f"anycast-tui postmortem: {rec.path.name}")]
    if w is None:
        out.append(Block("p", "The recording holds no ticks."))
        return out
    lo, hi = _bounds(rec, w, t0, t1)
    anycast = _anycast(rec, lo, hi)
    chosen = [(i, e) for i, e in enumerate(rec.events) if lo <= e.time_ms <= hi]
    incs, recorded = _incidents_in(rec, lo, hi, incidents)
    of_event = {e: ri.incident.id for ri in incs for e in ri.incident.all_events}
    state = rec.state_at(hi)
    devices = sorted(state.devices.values(), key=lambda s: (s.device.role.value, s.device.name))
    out.append(Block("toc"))

    # summary
    out.append(Block("h2", "Summary", anchor="summary"))
    kinds = Counter(ri.incident.kind.value for ri in incs)
    rows = [["Window", f"{iso(lo)} → {iso(hi)} ({_dur(hi - lo)})"],
            ["Recording", f"{iso(w[0])} → {iso(w[1])}, {len(rec.ticks())} ticks, schema {rec.schema_version}"],
            ["Devices", f"{len(devices)}: " + ", ".join(f"{s.device.name} ({s.device.role.value})" for s in devices)],
            ["Anycast prefixes", ", ".join(sorted(anycast)) or "none"],
            ["Incidents", f"{len(incs)}" + (": " + ", ".join(f"{k} {n}" for k, n in kinds.most_common()) if kinds
                                           else "") + f"; {RECORDED if recorded else REBUILT}"],
            ["Events", f"{len(chosen)}"]]
    rows += _totals(incs)
    ranked = [ri for ri in incs if _phases(ri)]
    if ranked:
        worst = max(ranked, key=_rank)
        head = worst.impact.headline if worst.impact else None
        rows.append(["Worst incident (live TCP resets, then estimated moved)",
                     f"#{worst.incident.id} at {iso(worst.incident.start_ms)}: {worst.incident.cause} — "
                     f"{_per_phase(worst, _live_short) if _live_tcp(worst) else _per_phase(worst, _short)}"
                     + (f"; out of service: {', '.join(head.servers_lost)} ({head.capacity_lost})"
                        if head and head.servers_lost else "")])
    else:
        rows.append(["Worst incident (live TCP resets, then estimated moved)", "no incident impact computed"])
    if rec.damage is not None:
        rows.append(["Damage", str(rec.damage)])
    out.append(Block("table", headers=["", ""], rows=rows))

    # incidents
    out.append(Block("h2", "Incidents", anchor="incidents"))
    if incs:
        irows = []
        for ri in incs:
            inc = ri.incident
            head = ri.impact.headline if ri.impact else None
            lost = f"{', '.join(head.servers_lost)} ({head.capacity_lost})" if head and head.servers_lost else ""
            irows.append([f"#{inc.id}", inc.kind.value, iso(inc.start_ms),
                          iso(inc.end_ms) if inc.end_ms is not None else "open",
                          _dur(inc.duration_ms(inc.end_ms if inc.end_ms is not None else hi)) +
                          ("" if inc.end_ms is not None else "+"), inc.cause, lost,
                          _per_phase(ri, _live_short), _per_phase(ri, _short)])
        out.append(Block("table", headers=["Incident", "Kind", "Start (UTC)", "End", "Duration", "Cause",
                                           "Servers lost (capacity)", "Measured (live)",
                                           "Estimated (synthetic flows)"], rows=irows))
    else:
        out.append(Block("p", "No incidents in the window."))

    # placement quality
    out.append(Block("h2", "Placement quality", anchor="placement"))
    prow = []
    for s in devices:
        q = device_quality(s)
        prow.append([s.device.name, s.device.role.value, q.placement.value if q else "unknown",
                     (q.reason or "") if q else "never polled"])
    out.append(Block("table", headers=["Device", "Role", "Placement", "Why not exact"], rows=prow))

    # timeline
    out.append(Block("h2", "Timeline", anchor="timeline"))
    shown = chosen if all_events else [(i, e) for i, e in chosen
                                        if e.prefix in anycast or e.kind in HEALTH_KINDS or e in of_event]
    if len(shown) < len(chosen):
        out.append(Block("p", f"Anycast events and device/link health only: {len(shown)} of {len(chosen)} events "
                         "(--all shows every event)."))
    if shown:
        out.append(Block("table", headers=["Time (UTC)", "Device", "Event", "Detail", "Incident"],
                         rows=[[iso(e.time_ms), e.device, e.kind.value, e.detail,
                                f"#{of_event[e]}" if e in of_event else ""] for _, e in shown]))
    else:
        out.append(Block("p", "No events in the window."))

    # per incident
    if incs:
        out += _details(rec, incs, anycast, pictures=pictures, max_detail=max_detail)

    out += _sampled_blocks(rec, hi)

    whatifs = [(t, b) for t, b in rec.whatifs() if lo <= t <= hi]
    if whatifs:
        out.append(Block("h2", "What-if runs", anchor="whatif"))
        out.append(Block("table", headers=["Time (UTC)", "What-if", "Moved", "TCP resets"],
                         rows=[[iso(t), str(b.get("label", "")), str(b.get("moved", "")), str(b.get("tcp_reset", ""))]
                               for t, b in whatifs]))
    return out


def _sampled_blocks(rec: Recording, hi: int) -> list[Block]:
    """The fabric's sampled traffic as last summarised in the window: flows per prefix, what each exporter sent,
    placement checked per device with its newest disagreements (device text: data, escaped by the renderers)."""
    notes = [(t, b) for t, b in rec.sampled() if t <= hi]  # the newest summary made by the window's end
    if not notes:
        return []
    t, body = notes[-1]
    out = [Block("h2", "Sampled traffic", anchor="sampled"),
           Block("p", f"As summarised at {iso(t)} from the devices' sFlow / IPFIX exports (measured on sampled "
                      f"packets; estimated rates are sampled × sampling rate).")]
    pre = body.get("prefixes") if isinstance(body.get("prefixes"), dict) else {}
    if pre:
        out.append(Block("table", headers=["Prefix", "Flows", "Packets/s (est.)", "Sampling", "Window"],
                         rows=[[str(p), f"{int(v.get('flows', 0)):,}", f"{float(v.get('pps', 0.0)):,.1f}",
                                str(v.get("rate", "")), f"{float(v.get('window_s', 0)):g} s"]
                               for p, v in sorted(pre.items()) if isinstance(v, dict)]))
    agents = body.get("agents") if isinstance(body.get("agents"), dict) else {}
    if agents:
        out.append(Block("table", headers=["Exporter", "Datagrams", "Samples", "Lost (datagrams / samples)",
                                           "Malformed"],
                         rows=[[str(d), f"{int(a.get('datagrams', 0)):,}", f"{int(a.get('samples', 0)):,}",
                                f"{int(a.get('datagrams_lost', 0)):,} / {int(a.get('samples_lost', 0)):,}",
                                f"{int(a.get('malformed', 0)):,}"
                                + (f" ({a.get('last_reason')})" if a.get("last_reason") else "")]
                               for d, a in sorted(agents.items()) if isinstance(a, dict)]))
    placement = body.get("placement") if isinstance(body.get("placement"), dict) else {}
    if placement:
        rows = []
        for dev, a in sorted(placement.items()):
            if not isinstance(a, dict) or not a.get("compared"):
                continue
            n, ok = int(a["compared"]), int(a.get("agreed", 0))
            rows.append([str(dev), "exact" if a.get("exact") else "approximate", f"{ok:,} of {n:,}",
                         f"{100 * ok / n:.1f} %"])
        if rows:
            out.append(Block("table", headers=["Device", "Model", "Samples agreeing", "Agreement"], rows=rows))
        bad = [[str(dev), iso(int(float(d[0]) * 1000)), str(d[1]), str(d[2]), str(d[3])]
               for dev, a in sorted(placement.items()) if isinstance(a, dict)
               for d in a.get("disagreements", []) if isinstance(d, list) and len(d) == 4]
        if bad:
            out.append(Block("table", headers=["Device", "Time (UTC)", "Flow", "Predicted", "Left on"], rows=bad))
    return out


FINDING_KINDS = (EventKind.FINDING_RAISED, EventKind.FINDING_CLEARED)


def _findings(rec: Recording) -> list[Event]:
    """The recording's health-finding events (recordings of monitor/demo sessions since they were recorded)."""
    return [e for e in rec.events if e.kind in FINDING_KINDS]


def findings_during(events: list[Event], ri: RecordedIncident) -> list[tuple[str, str, int]]:
    """The health findings open at some time during the incident: (``rule subject``, severity, raised at)."""
    return open_findings(events, ri.incident.start_ms, ri.incident.end_ms)


def _details(rec: Recording, incs: list[RecordedIncident], anycast: set[str], *, pictures: bool,
             max_detail: int) -> list[Block]:
    out = [Block("h2", "Incidents in detail", anchor="details")]
    detail = incs
    by_impact = sorted(incs, key=_rank, reverse=True)
    if len(incs) > max_detail:
        keep = {id(ri) for ri in by_impact[:max_detail]}
        detail = [ri for ri in incs if id(ri) in keep]
        out.append(Block("p", f"{max_detail} of {len(incs)} incidents in detail (the most impactful: live TCP resets, "
                         "then estimated moved flows)."))
    with_pictures = {id(ri) for ri in by_impact[:MAX_PICTURES]} if pictures else set()
    if pictures and len(incs) > MAX_PICTURES:
        out.append(Block("p", f"Pictures of the ECMP groups for the {MAX_PICTURES} most impactful incidents."))
    index = {e: i for i, e in reversed(list(enumerate(rec.events)))}
    seq_index = {s: k for k, s in enumerate(t.seq for t in rec.ticks())}
    n_pic = 0
    drawn: dict[str, str] = {}
    finding_events = _findings(rec)
    for ri in detail:
        inc = ri.incident
        end = iso(inc.end_ms) if inc.end_ms is not None else "open"
        out.append(Block("h3", f"Incident {inc.id}: {inc.cause}", anchor=f"incident-{inc.id}"))
        out.append(Block("p", f"{inc.kind.value.capitalize()}, {iso(inc.start_ms)} → {end}; devices: "
                         f"{', '.join(inc.devices)}; prefixes: {', '.join(inc.prefixes) or 'none'}."
                         + (f" Restore: {inc.restore}." if inc.restore else "")
                         + (f" Not undone when last seen: {inc.outstanding} of its removals." if inc.outstanding
                            else "")))
        for name, p in _phases(ri):
            out.append(Block("p", f"Impact of the {name}: {phase_text(p)}."))
        if ri.impact is not None and (alt := resilient_text(ri.impact)):
            out.append(Block("p", alt[0].upper() + alt[1:] + "."))
        if ri.impact is None:
            out.append(Block("p", "Impact: not computed."))
        ev_rows = [[ph, iso(e.time_ms), e.device, e.kind.value, e.detail]
                   for ph, evs in (("onset", inc.events), ("restore", inc.restore_events)) for e in evs]
        if ev_rows:
            out.append(Block("table", headers=["Phase", "Time (UTC)", "Device", "Event", "Detail"], rows=ev_rows))
        if open_now := findings_during(finding_events, ri):
            out.append(Block("table", headers=["Health finding open during the incident", "Severity", "Raised (UTC)"],
                             rows=[[k, sev, iso(t)] for k, sev, t in open_now]))
        for name, p in _phases(ri):
            if p.matrix:
                out.append(Block("table", headers=[f"{name.capitalize()}: from", "To", "Flows (estimated)"],
                                 rows=[[a, b, f"{n:,}"] for a, b, n in p.matrix]))
        if id(ri) not in with_pictures:
            continue
        prefixes = sorted(p for p in inc.prefixes if p in anycast) or sorted(anycast)
        for name, evs in (("onset", inc.events), ("restore", inc.restore_events)):
            ticks = sorted({seq_index.get(rec.event_seqs[index[e]]) for e in evs if e in index} - {None})
            if not ticks:
                continue
            before = rec.state_of_tick(ticks[0] - 1) if ticks[0] > 0 else None
            after = rec.state_of_tick(ticks[-1])
            rows = changed_groups(before, after, prefixes, first=inc.devices)
            if not rows:
                out.append(Block("p", f"{name.capitalize()}: no ECMP group of {', '.join(prefixes)} changed."))
                continue
            key = repr(rows)
            if key in drawn:
                out.append(Block("p", f"{name.capitalize()}: the same group change as {drawn[key]}."))
                continue
            n_pic += 1
            drawn[key] = f"picture {n_pic} (incident {inc.id}, {name})"
            out.append(Block("groups", f"Picture {n_pic}: incident {inc.id}, {name}, ECMP groups that changed "
                             f"({', '.join(prefixes)})", rows=rows, name=f"groups-{n_pic:03d}.svg"))
    return out


def scrub_blocks(blocks: list[Block], scrubber: Scrubber) -> list[Block]:
    return [Block(b.kind, scrubber.text(b.text), [scrubber.text(h) for h in b.headers],
                  [[scrubber.text(c) for c in r] for r in b.rows], b.name, b.anchor) for b in blocks]


# --------------------------------------------------------------------------- JSON


def _impact_json(p: PhaseImpact | None) -> dict[str, Any] | None:
    if p is None:
        return None
    return {"estimated": counts_json(p.estimated), "live": live_json(p.live), "sampled": sampled_json(p.sampled),
            "sample": p.sample,
            "servers_lost": list(p.servers_lost), "servers_gained": list(p.servers_gained),
            "servers": [list(m) for m in p.matrix], "ingress_assumed": p.ingress_assumed, "ingress": p.ingress}


def report_json(rec: Recording, *, t0: int | None = None, t1: int | None = None,
                incidents: tuple[list[RecordedIncident], bool] | None = None) -> dict[str, Any]:
    """The report as data (README: "report --format json")."""
    w = rec.window
    out: dict[str, Any] = {"schema": REPORT_SCHEMA, "recording": rec.path.name, "window": None, "recorded": None,
                           "devices": [], "incidents": [], "worst_incident": None}
    if w is None:
        return out
    lo, hi = _bounds(rec, w, t0, t1)
    incs, recorded = _incidents_in(rec, lo, hi, incidents)
    out["window"] = {"start": iso(lo), "end": iso(hi), "start_ms": lo, "end_ms": hi}
    out["recorded"] = recorded
    state = rec.state_at(hi)
    for name, s in sorted(state.devices.items()):
        q = device_quality(s)
        out["devices"].append({"name": name, "role": s.device.role.value,
                               "placement": q.placement.value if q else None,
                               "placement_reason": q.reason if q else ""})
    finding_events = _findings(rec)
    for ri in incs:
        inc, imp = ri.incident, ri.impact
        head = imp.headline if imp else None
        out["incidents"].append({
            "id": inc.id, "kind": inc.kind.value, "start": iso(inc.start_ms),
            "end": iso(inc.end_ms) if inc.end_ms is not None else None, "start_ms": inc.start_ms,
            "end_ms": inc.end_ms, "cause": inc.cause, "restore": inc.restore, "devices": list(inc.devices),
            "prefixes": list(inc.prefixes), "servers_lost": list(head.servers_lost) if head else [],
            "capacity_lost": head.capacity_lost if head else "",
            "impact": _impact_json(imp.onset) if imp else None,
            "restore_impact": _impact_json(imp.restore) if imp else None,
            "resilient": counts_json(imp.resilient) if imp and imp.resilient is not None else None,
            "events": [{"phase": ph, "time": iso(e.time_ms), "device": e.device, "kind": e.kind.value,
                        "detail": e.detail} for ph, evs in (("onset", inc.events), ("restore", inc.restore_events))
                       for e in evs],
            "findings": [{"finding": k, "severity": sev, "raised": iso(t)}
                         for k, sev, t in findings_during(finding_events, ri)],
            "recorded": recorded})
    ranked = [ri for ri in incs if _phases(ri)]
    if ranked:
        out["worst_incident"] = max(ranked, key=_rank).incident.id
    return out


def _scrub_json(obj: Any, scrubber: Scrubber) -> Any:
    if isinstance(obj, str):
        return scrubber.text(obj)
    if isinstance(obj, list):
        return [_scrub_json(v, scrubber) for v in obj]
    if isinstance(obj, dict):
        return {k: _scrub_json(v, scrubber) for k, v in obj.items()}
    return obj


# --------------------------------------------------------------------------- rendering

_MD_SPECIAL = re.compile(r"([\\`*_\[\]<>&|#!~{}])")


def md_text(s: str) -> str:
    """Plain text as inline Markdown that renders as exactly that text: line breaks folded into spaces
    (a cell or heading stays one line), HTML and Markdown syntax backslash-escaped (CommonMark lets any
    ASCII punctuation be)."""
    return _MD_SPECIAL.sub(r"\\\1", " ".join(str(s).splitlines()))


def _md_line(s: str) -> str:
    """A paragraph of plain text: as ``md_text``, and nothing at its start opens a block (list, rule, code)."""
    s = md_text(s).lstrip()
    if s[:1] in ("-", "+", "="):
        s = "\\" + s
    return re.sub(r"^(\d+)([.)])", r"\1\\\2", s)


def _svg(b: Block) -> str:
    from anycast_tui.record.report_svg import groups_svg

    return groups_svg(b.text, b.rows)


def _toc(blocks: list[Block]) -> list[tuple[int, str, str]]:
    return [(int(b.kind[1]), b.text, b.anchor) for b in blocks if b.kind in ("h2", "h3") and b.anchor]


def render_markdown(blocks: list[Block], pictures: dict[str, str] | None = None, prefix: str = "") -> str:
    """Markdown; with ``pictures`` given, SVGs go there (file name -> SVG) and are linked, else tables."""
    lines: list[str] = []
    for b in blocks:
        if b.kind in ("h1", "h2", "h3"):
            if b.anchor:
                lines.append(f'<a id="{b.anchor}"></a>')
            lines += ["#" * int(b.kind[1]) + " " + md_text(b.text), ""]
        elif b.kind == "toc":
            toc = _toc(blocks)
            if toc:
                lines += ["**Contents**", ""]
                lines += [("  " if level == 3 else "") + f"- [{md_text(text)}](#{anchor})"
                          for level, text, anchor in toc]
                lines.append("")
        elif b.kind == "p":
            lines += [_md_line(b.text), ""]
        elif b.kind == "table" or (b.kind == "groups" and pictures is None):
            headers = b.headers if b.kind == "table" else ["Device", "Side", "Next hop", "Weight", "Share"]
            if b.kind == "groups":
                lines += [_md_line(b.text), ""]
            lines.append("| " + " | ".join(md_text(h) for h in headers) + " |")
            lines.append("|" + "---|" * len(headers))
            lines += ["| " + " | ".join(md_text(c) for c in r) + " |" for r in b.rows]
            lines.append("")
        elif b.kind == "groups":
            pictures[prefix + b.name] = _svg(b)
            lines += [f"![{md_text(b.text)}]({prefix + b.name})", ""]
    return "\n".join(lines)


_CSS = """body{font-family:system-ui,sans-serif;margin:2em;color:#222;max-width:80em}
table{border-collapse:collapse;margin:.5em 0 1.2em}td,th{border:1px solid #ccc;padding:.25em .6em;text-align:left;
vertical-align:top;font-size:.92em}th{background:#f3f3f3}h3{margin-top:1.6em;font-size:1.05em}
td:first-child,td.nw{white-space:nowrap}figure{margin:.5em 0 1.5em}figure svg{width:100%;height:auto;max-width:62em}
figcaption{font-size:.85em;color:#555}nav ul{margin:.3em 0 1.2em;padding-left:1.4em}nav li{margin:.1em 0}
td{overflow-wrap:anywhere}td.w{min-width:14em}div.t{overflow-x:auto}"""


def _td(cell: str) -> str:
    """A cell; short single words (names, numbers, times) are kept on one line, long text gets room."""
    nw = ' class="nw"' if len(cell) <= 24 and " " not in cell else ' class="w"' if len(cell) > 100 else ""
    return f"<td{nw}>{html.escape(cell)}</td>"


def _html_toc(blocks: list[Block]) -> str:
    toc = _toc(blocks)
    if not toc:
        return ""
    items: list[str] = []
    open_sub = False
    for level, text, anchor in toc:
        link = f'<a href="#{html.escape(anchor)}">{html.escape(text)}</a>'
        if level == 3 and not open_sub:
            items.append("<ul>")
            open_sub = True
        elif level == 2 and open_sub:
            items.append("</ul></li>")
            open_sub = False
        elif level == 2 and items:
            items.append("</li>")
        items.append(f"<li>{link}" + ("</li>" if level == 3 else ""))
    items.append("</ul></li>" if open_sub else "</li>")
    return '<nav aria-label="Contents"><strong>Contents</strong><ul>' + "".join(items) + "</ul></nav>"


def render_html(blocks: list[Block]) -> str:
    title = next((b.text for b in blocks if b.kind == "h1"), "anycast-tui report")
    parts = ["<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
             f"<title>{html.escape(title)}</title><style>{_CSS}</style></head><body>"]
    for b in blocks:
        if b.kind in ("h1", "h2", "h3"):
            ident = f' id="{html.escape(b.anchor)}"' if b.anchor else ""
            parts.append(f"<{b.kind}{ident}>{html.escape(b.text)}</{b.kind}>")
        elif b.kind == "toc":
            parts.append(_html_toc(blocks))
        elif b.kind == "p":
            parts.append(f"<p>{html.escape(b.text)}</p>")
        elif b.kind == "table":
            head = "".join(f"<th>{html.escape(h)}</th>" for h in b.headers) if any(b.headers) else ""
            body = "".join("<tr>" + "".join(_td(c) for c in r) + "</tr>" for r in b.rows)
            thead = f"<thead><tr>{head}</tr></thead>" if head else ""
            parts.append(f'<div class="t"><table>{thead}<tbody>{body}</tbody></table></div>')
        elif b.kind == "groups":
            parts.append(f'<figure aria-label="{html.escape(b.text)}">{_svg(b)}</figure>')
    parts.append("</body></html>")
    return "\n".join(parts)


def _scrubber(rec: Recording) -> Scrubber:
    names: dict[str, str] = {}
    inv = rec.inventory() or {}
    for d in inv.get("devices", []):
        names[d["name"]] = d.get("role", "host")
        if d.get("host"):
            names.setdefault(d["host"], "host")
    w = rec.window
    if w is not None:
        for n, s in rec.state_at(w[1]).devices.items():
            names[n] = s.device.role.value
        for n, s in rec.state_at(w[0]).devices.items():
            names.setdefault(n, s.device.role.value)
    for e in rec.events:
        names.setdefault(e.device, "host")
    return Scrubber(names=names)


def report(rec: Recording, *, fmt: str = "md", t0: int | None = None, t1: int | None = None,
           scrub: bool = False, pictures: bool = True, max_detail: int = MAX_DETAIL, all_events: bool = True,
           files: dict[str, str] | None = None, file_prefix: str = "") -> str:
    """The report text (``fmt`` md, html or json); ``scrub`` replaces addresses and host names.

    Markdown with ``files`` given: the pictures go into it (``file_prefix`` + name -> SVG text) and the
    Markdown links them; without, Markdown shows them as tables.  HTML always inlines them (one
    self-contained file).  JSON is strict (no NaN/Infinity).
    """
    if fmt == "json":
        data = report_json(rec, t0=t0, t1=t1)
        if scrub:
            data = _scrub_json(data, _scrubber(rec))
        return json.dumps(data, allow_nan=False, ensure_ascii=False) + "\n"  # compact: the C encoder
    if fmt not in ("md", "html"):
        raise ValueError(f"unknown format {fmt!r} (md, html or json)")
    blocks = build(rec, t0=t0, t1=t1, pictures=pictures, max_detail=max_detail, all_events=all_events)
    if scrub:
        blocks = scrub_blocks(blocks, _scrubber(rec))
    if fmt == "md":
        return render_markdown(blocks, files, file_prefix)
    return render_html(blocks)
