"""Recording a live session (monitor, demo): the command-line options and the one call that starts it.

``add_arguments(parser)`` adds ``--no-record`` and ``--record-dir DIR``;
``start(args, timeline, kind=..., inventory=..., settings=...)`` creates a new
session file in the directory (default: the user's data directory), attaches
a Recorder (flushing once a second on its own thread) and returns it, or None
when recording is off; ``incident_tracker(timeline, rec)`` keeps every
incident's newest version in it.  Call ``close()`` on
it when the session ends.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING, Any, Mapping

from anycast_tui.model.timeline import Timeline
from anycast_tui.record.paths import new_session_path
from anycast_tui.record.schema import DEFAULT_KEYFRAME_EVERY
from anycast_tui.record.writer import Recorder

if TYPE_CHECKING:
    from anycast_tui.collect.inventory import Inventory
    from anycast_tui.incidenttracker import IncidentTracker
    from anycast_tui.model.incident_impact import SampledOf


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--no-record", action="store_true", help="do not record this session")
    parser.add_argument("--record-dir", type=Path, metavar="DIR",
                        help="where session files go (default: $ANYCAST_TUI_RECORDINGS or "
                        "~/.local/share/anycast-tui/recordings)")


def start(args: argparse.Namespace, timeline: Timeline, *, kind: str, inventory: Inventory | None = None,
          settings: Mapping[str, Any] | None = None,
          keyframe_every: int = DEFAULT_KEYFRAME_EVERY) -> Recorder | None:
    """A Recorder attached to ``timeline`` writing a new file, or None with ``--no-record`` (``args``: parsed
    with the options of ``add_arguments``).  Impact goes in through ``incident_tracker`` (incidents) and
    ``Recorder.record_impact`` (hop-local, per event)."""
    if args.no_record:
        return None
    path = new_session_path(args.record_dir, kind)
    rec = Recorder(path, keyframe_every=keyframe_every, inventory=inventory, settings=settings)
    rec.attach(timeline)
    return rec


def incident_tracker(timeline: Timeline, rec: Recorder | None,
                     sampled_of: "SampledOf | None" = None) -> "IncidentTracker":
    """The session's IncidentTracker, every new version of an incident kept in ``rec`` (when recording);
    ``sampled_of``: the fabric's sampled traffic, when a flow-export collector runs."""
    from anycast_tui.incidenttracker import IncidentTracker
    from anycast_tui.record import incidentlog

    if rec is None:
        return IncidentTracker(timeline, sampled_of=sampled_of)
    return IncidentTracker(timeline, on_update=lambda inc, imp: rec.record_incident(incidentlog.to_json(inc, imp)),
                           on_merged=lambda old, new: rec.record_incident(incidentlog.merged_json(old, new)),
                           sampled_of=sampled_of)
