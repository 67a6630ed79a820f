"""The hop-local impact summary recorded next to each event (``Recorder.record_impact``): counts and
moved flows per (from, to) end of one ``model.impact.Impact``.  The end-to-end answer is the
incident's (``model.incident_impact``, recorded through ``record.incidentlog``)."""

from __future__ import annotations

from typing import Any

from anycast_tui.model.impact import Impact


def summarize(imp: Impact) -> dict[str, Any]:
    """JSON-able summary of a hop-local ``Impact``."""
    out: dict[str, Any] = dict(imp.counts)
    out["servers"] = [[a, b, n] for (a, b), n in sorted(imp.matrix().items(), key=lambda kv: -kv[1])]
    return out
