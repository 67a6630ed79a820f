"""Incidents at the recording boundary: typed ``Incident`` + ``IncidentImpact`` <-> JSON.

The live session computes each incident and its impact once (``model.incidents``,
``model.incident_impact``) and the recorder stores the newest version of each
as a note (kind ``incident``); replay and report read them back, so every
surface shows the very numbers the monitor showed.  An incident merged into
another is stored as ``{"id": N, "merged_into": M}`` and dropped on reading.

``INCIDENT_SCHEMA`` versions this JSON (also used by ``report --format json``).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, Iterable

from anycast_tui.model.incident_impact import (IncidentImpact, counts_from_json, counts_json, phase_from_json,
                                                phase_json)
from anycast_tui.model.incidents import Incident, IncidentKind
from anycast_tui.model.types import Event
from anycast_tui.record.codec import decode, encode

INCIDENT_SCHEMA = 1

if TYPE_CHECKING:
    from anycast_tui.record.reader import Recording


@dataclass(frozen=True, slots=True)
class RecordedIncident:
    incident: Incident
    impact: IncidentImpact | None


def to_json(inc: Incident, imp: IncidentImpact | None) -> dict[str, Any]:
    return {"schema": INCIDENT_SCHEMA, "id": inc.id, "kind": inc.kind.value, "start_ms": inc.start_ms,
            "end_ms": inc.end_ms, "cause": inc.cause, "restore": inc.restore, "devices": list(inc.devices),
            "prefixes": list(inc.prefixes), "outstanding": inc.outstanding,
            "events": [encode(e) for e in inc.events], "restore_events": [encode(e) for e in inc.restore_events],
            "onset": phase_json(imp.onset) if imp is not None else None,
            "restore_impact": phase_json(imp.restore) if imp is not None else None,
            "resilient": counts_json(imp.resilient) if imp is not None and imp.resilient is not None else None,
            "computed": imp is not None}


def merged_json(incident_id: int, into: int) -> dict[str, Any]:
    return {"schema": INCIDENT_SCHEMA, "id": incident_id, "merged_into": into}


def from_json(d: dict[str, Any]) -> RecordedIncident:
    inc = Incident(int(d["id"]), IncidentKind(d["kind"]), int(d["start_ms"]),
                   None if d.get("end_ms") is None else int(d["end_ms"]), str(d["cause"]),
                   tuple(map(str, d["devices"])), tuple(map(str, d["prefixes"])),
                   tuple(decode(Event, e) for e in d["events"]),
                   tuple(decode(Event, e) for e in d.get("restore_events", ())), str(d.get("restore", "")),
                   int(d.get("outstanding", 0)))
    imp = None
    if d.get("computed"):
        imp = IncidentImpact(inc.id, phase_from_json(d.get("onset")), phase_from_json(d.get("restore_impact")),
                             counts_from_json(d.get("resilient")))
    return RecordedIncident(inc, imp)


def latest(notes: Iterable[dict[str, Any]]) -> list[RecordedIncident]:
    """The newest version of every incident in ``notes`` (recording order), oldest incident first."""
    newest: dict[int, dict[str, Any]] = {}
    gone: set[int] = set()
    for d in notes:
        iid = int(d["id"])
        if "merged_into" in d:
            gone.add(iid)
            newest.pop(iid, None)
            continue
        if iid not in gone:  # a merge is final: a version computed before it and written after it is stale
            newest[iid] = d
    out = [from_json(d) for d in newest.values()]
    return sorted(out, key=lambda r: (r.incident.start_ms, r.incident.id))


def rebuild(rec: "Recording", *, compute: bool = True) -> list[RecordedIncident]:
    """Incidents of a recording without incident notes (written before them): its ticks fed to an
    ``IncidentBook`` in order, each with the events recorded with it, and (``compute``) their impact
    by the same function the live session uses.  Coarser than live (a tick coalesces up to a
    second of changes), and said so by the callers."""
    from anycast_tui.model.incident_impact import incident_impact, resilient_counts
    from anycast_tui.model.incidents import IncidentBook

    book: IncidentBook | None = None
    prev = None
    done = 0
    for i in range(len(rec.tick_times)):
        snap = rec.state_of_tick(i)
        if book is None:
            book = IncidentBook(snap.anycast_prefixes)
        n = rec.events_until_tick(i)
        book.feed(prev, snap, rec.events[done:n])
        done, prev = n, snap
    if book is None:
        return []
    out = []
    for inc in book.incidents():
        imp = None
        if compute:
            onset, restore = book.phases(inc.id)
            imp = incident_impact(inc.id, onset, restore, inc.prefixes)
            if onset is not None:
                imp = replace(imp, resilient=resilient_counts(onset, inc))
        out.append(RecordedIncident(inc, imp))
    return out


def of_recording(rec: "Recording") -> tuple[list[RecordedIncident], bool]:
    """(incidents, recorded): the recording's own incident notes when it has them (the numbers the
    monitor showed), else rebuilt from its ticks (``recorded`` False)."""
    notes = rec.incident_notes()
    if notes:
        return latest(notes), True
    return rebuild(rec), False
