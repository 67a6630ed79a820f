"""What the panels show, as plain rows: no textual, no colours, no I/O.

Each function takes the fabric snapshot (and the injected clock's ``now_ms``
where an age is shown) and returns small frozen records the widgets style.
"""

from __future__ import annotations

import ipaddress
import socket
from collections import Counter, deque
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Callable, Iterable, Mapping, Sequence

from anycast_tui.model.events import nexthop_label
from anycast_tui.model.hashing import Placement
from anycast_tui.model.incident_impact import IncidentImpact, estimated_text, phase_text, resilient_text
from anycast_tui.model.incident_impact import live_text as phase_live_text
from anycast_tui.model.incidents import Incident
from anycast_tui.model.placement_check import DeviceAgreement
from anycast_tui.model.memo import IdentityMemo, routes_to, state_memo
from anycast_tui.model.views import PLACEMENT_GLYPH, device_quality
from anycast_tui.safetext import safe
from anycast_tui.model.types import (
    DeviceState,
    Event,
    EventKind,
    FabricSnapshot,
    Health,
    HealthStatus,
    Nexthop,
    Role,
    Route,
    select_routes,
)

ROLE_ORDER: tuple[Role, ...] = (Role.BORDER, Role.SPINE, Role.LEAF, Role.SERVER, Role.CLIENT, Role.OTHER)
ROLE_TITLE = {Role.BORDER: "border", Role.SPINE: "spines", Role.LEAF: "leaves", Role.SERVER: "servers",
              Role.CLIENT: "clients", Role.OTHER: "other"}
HASH_POLICY = {0: "L3", 1: "L4", 2: "L3-inner", 3: "custom"}


def hms(ms: int | None) -> str:
    """UTC ``HH:MM:SS.mmm`` (``--:--:--.---`` when unknown)."""
    if ms is None:
        return "--:--:--.---"
    t = datetime.fromtimestamp(ms / 1000, tz=timezone.utc)
    return t.strftime("%H:%M:%S.") + f"{ms % 1000:03d}"


def hms_s(ms: int | None) -> str:
    """UTC ``HH:MM:SS``."""
    return hms(ms)[:8]


def age(now_ms: int, then_ms: int | None) -> str:
    """Short age: ``0.4s``, ``12s``, ``3m``, ``2h``; ``-`` when never."""
    if then_ms is None:
        return "-"
    d = max(0, now_ms - then_ms) / 1000
    if d < 10:
        return f"{d:.1f}s"
    if d < 120:
        return f"{d:.0f}s"
    if d < 7200:
        return f"{d / 60:.0f}m"
    return f"{d / 3600:.0f}h"


def age_seconds(text: str) -> float:
    """Inverse of :func:`age` for ordering (``-`` is oldest)."""
    if text == "-":
        return float("inf")
    if text.startswith("<"):
        return float(text[1:-1])
    unit = {"s": 1, "m": 60, "h": 3600}[text[-1]]
    return float(text[:-1]) * unit


# --------------------------------------------------------------------------- fabric panel


@dataclass(frozen=True, slots=True)
class DeviceRow:
    name: str
    role: Role
    status: HealthStatus
    glyph: str  # ✓ ! ✗ ?
    word: str  # "ok", "stale since 12:00:01: timeout", ...
    age: str  # since the last good poll
    hash: str  # "L4 seed 1234"
    placement: Placement | None = None  # placement quality of its hashed routes; None before the first poll
    hint: str = ""  # why it is not exact (one line), "" when exact
    checked: DeviceAgreement | None = None  # its placements checked against its own sampled packets

    @property
    def placement_text(self) -> str:
        """``= exact``, or the check against sampled traffic where there is one: ``= 100 % of 3,210``."""
        if self.placement is None:
            return "-"
        if self.checked is not None and self.checked.compared:
            return self.checked.text
        return f"{self.placement_glyph} {self.placement.value}"

    @property
    def placement_glyph(self) -> str:
        return PLACEMENT_GLYPH[self.placement] if self.placement is not None else " "


def health_glyph(status: HealthStatus) -> str:
    return {HealthStatus.OK: "✓", HealthStatus.STALE: "!", HealthStatus.ERROR: "✗"}.get(status, "?")


def health_word(h: Health) -> str:
    if h.status is HealthStatus.OK:
        return "ok"
    if h.status is HealthStatus.STALE:
        return f"stale since {hms_s(h.since_ms)}: {h.error or 'no answer'}"
    if h.status is HealthStatus.ERROR:
        return f"error: {h.error or 'no answer'}"
    return "waiting for first poll"


def hash_label(state: DeviceState) -> str:
    if state.collected_at_ms is None:
        return "-"
    h = state.hash
    policy = HASH_POLICY.get(h.policy, str(h.policy))
    seed = f"seed {h.seed}" if h.seed else "seed random"
    return f"{policy} {seed}"


def device_rows(snapshot: FabricSnapshot | None, now_ms: int, fresh_s: float = 0.0,
                checked: Mapping[str, DeviceAgreement] | None = None) -> list[DeviceRow]:
    """One row per device; an ok device polled less than ``fresh_s`` ago shows ``<Ns`` (its age would
    change on every redraw and make an idle screen busy); ``checked``: placement agreement with the
    devices' sampled traffic, where a flow-export collector runs."""
    if snapshot is None:
        return []
    fresh = f"<{fresh_s:g}s"
    rows = []
    for st in sorted(snapshot.devices.values(), key=lambda s: (ROLE_ORDER.index(s.device.role), s.device.name)):
        h = st.health
        then = h.last_ok_ms if h.last_ok_ms is not None else st.collected_at_ms
        shown = fresh if (h.status is HealthStatus.OK and then is not None
                          and now_ms - then < fresh_s * 1000) else age(now_ms, then)
        q = device_quality(st)
        rows.append(DeviceRow(st.device.name, st.device.role, h.status, health_glyph(h.status), health_word(h),
                              shown, hash_label(st), q.placement if q else None, q.hint if q else "",
                              (checked or {}).get(st.device.name)))
    return rows


def disagreement_lines(rows: Sequence[DeviceRow]) -> list[str]:
    """One line per device whose sampled packets left elsewhere than the model predicted (the newest one)."""
    out = []
    for r in rows:
        a = r.checked
        if a is None or not a.disagreements:
            continue
        d = a.disagreements[-1]
        n = a.compared - a.agreed
        out.append(f"{r.name}: {n:,} of {a.compared:,} sampled packets left elsewhere than predicted, newest "
                   f"{safe(d.flow)} predicted {safe(d.predicted)}, left on {safe(d.observed)}")
    return out


# --------------------------------------------------------------------------- groups panel


@dataclass(frozen=True, slots=True)
class HopRow:
    gateway: str  # "-" when none
    dev: str
    neighbour: str  # device name owning the gateway address, or ""
    weight: int
    flags: tuple[str, ...]
    buckets: int | None  # resilient groups: buckets held by this member

    @property
    def usable(self) -> bool:
        return "dead" not in self.flags and "linkdown" not in self.flags


@dataclass(frozen=True, slots=True)
class GroupView:
    device: str
    role: Role
    prefix: str
    kind: str  # "multipath", "single path", "mpath group 10", "resilient group 10 (32 buckets)", "local address", "no route"
    hops: tuple[HopRow, ...]
    stale: bool  # the device's data is its last good data
    rib: str = ""  # FRR devices: "BGP: 4 paths, FIB: 4" (model.rib), "" without an FRR RIB


_OWNERS = IdentityMemo(3)  # the current snapshot and the selected event's (each holds a whole fabric)


def address_owners(snapshot: FabricSnapshot) -> dict[str, str]:
    """Interface address → device name, over every device (loopback 127/8 and ::1 left out); worked out
    once per snapshot object (each redraw and key asks again).  Do not modify the result."""
    return _owners(snapshot)[1]


_owners_last: tuple[int, dict[str, str]] = (0, {})


def _owners(snapshot: FabricSnapshot) -> tuple[int, dict[str, str]]:
    """(generation, ``address_owners``): equal owners worked out from a later snapshot are the same dict with the
    same generation, so what is derived from them (``_GROUP_OF``) holds across snapshots until they change."""

    def make() -> tuple[int, dict[str, str]]:
        global _owners_last
        owners = _address_owners(snapshot)
        if owners != _owners_last[1]:
            _owners_last = (_owners_last[0] + 1, owners)
        return _owners_last

    return _OWNERS.get(snapshot, "owners", make)


def _address_owners(snapshot: FabricSnapshot) -> dict[str, str]:
    owners: dict[str, str] = {}
    for st in snapshot.devices.values():
        for itf in st.interfaces:
            for a in itf.addresses:
                key = _canonical_owner(a.local)
                if key is not None:
                    owners.setdefault(key, st.device.name)
    return owners


_CANONICAL: dict[str, str | None] = {}


_MAPPED_V4 = bytes(10) + b"\xff\xff"  # ::ffff:0:0/96, whose loopback and link-local depend on the Python version
_LOOPBACK_V6 = bytes(15) + b"\x01"


def _owner_key(text: str) -> str | None:
    """What ipaddress answers for ``text`` (its canonical text, None for loopback, link-local and non-addresses),
    reading the usual cases without it (a 2,000-device fabric has ~40,000 addresses, parsed when first shown)."""
    octets = _canonical_v4(text)
    if octets is not None:
        return None if octets[0] == 127 or octets[:2] == (169, 254) else text
    if ":" in text and "." not in text and "%" not in text:  # IPv6 in hex groups: the C parser and printer
        try:
            packed = socket.inet_pton(socket.AF_INET6, text)
        except (OSError, ValueError):
            packed = b""
        if packed and packed[:12] != _MAPPED_V4:
            if packed == _LOOPBACK_V6 or (packed[0] == 0xFE and packed[1] & 0xC0 == 0x80):  # ::1, fe80::/10
                return None
            # inet_ntop writes RFC 5952 text as ipaddress does (longest zero run, first of equal ones, not one group)
            return text if socket.inet_ntop(socket.AF_INET6, packed) == text else str(ipaddress.IPv6Address(packed))
    try:
        ip = ipaddress.ip_address(text)
    except ValueError:
        return None
    return None if ip.is_loopback or ip.is_link_local else str(ip)


def _canonical_v4(text: str) -> tuple[int, ...] | None:
    """The octets of ``text`` when it is an IPv4 address written as ipaddress writes it (four decimal octets
    0-255, ASCII digits, no leading zero); None for anything else."""
    parts = text.split(".")
    if len(parts) != 4:
        return None
    octets = []
    for p in parts:
        if not (0 < len(p) <= 3 and p.isascii() and p.isdigit()) or (p[0] == "0" and len(p) > 1):
            return None
        octets.append(int(p))
    return tuple(octets) if max(octets) <= 255 else None


def _canonical_owner(text: str) -> str | None:
    """``text`` as ipaddress writes it; None for loopback, link-local and non-addresses (cached: a fabric's
    addresses are parsed once, not on every poll)."""
    if text in _CANONICAL:
        return _CANONICAL[text]
    key = _owner_key(text)
    if len(_CANONICAL) > 1_000_000:
        _CANONICAL.clear()
    _CANONICAL[text] = key
    return key


def _route_for(state: DeviceState, prefix: str) -> Route | None:
    best: Route | None = None
    for r in routes_to(state, prefix):
        if r.table == "local":
            continue
        if r.type not in ("unicast", "local"):
            continue
        if best is None or (r.metric or 0) < (best.metric or 0):
            best = r
    return best


def _is_local(state: DeviceState, prefix: str) -> bool:
    for r in select_routes(state.routes, (prefix,)):
        if r.type == "local":
            return True
    net = ipaddress.ip_network(prefix, strict=False)
    if net.num_addresses == 1:
        host = str(net.network_address)
        return any(a.local == host for i in state.interfaces for a in i.addresses)
    return False


def _hop(nh: Nexthop, owners: Mapping[str, str], buckets: int | None = None, weight: int | None = None) -> HopRow:
    return HopRow(nh.gateway or "-", nh.dev or "-", owners.get(nh.gateway or "", ""),
                  nh.weight if weight is None else weight, tuple(nh.flags), buckets)


def group_view(state: DeviceState, prefix: str, owners: Mapping[str, str]) -> GroupView:
    name, role = state.device.name, state.device.role
    stale = state.health.status is not HealthStatus.OK
    route = _route_for(state, prefix)
    if route is None or route.type == "local":
        kind = "local address" if (route is not None or _is_local(state, prefix)) else "no route"
        return GroupView(name, role, prefix, kind, (), stale)
    group = state.group(route.nhid) if route.nhid is not None else None
    if group is None:
        kind = "multipath" if route.multipath else "single path"
        return GroupView(name, role, prefix, kind, tuple(_hop(nh, owners) for nh in route.nexthops), stale,
                         _rib_text(state, prefix))
    objects = {o.id: o for o in state.nexthops.objects}
    counts = Counter(b.nhid for b in group.bucket_table)
    resilient = group.type == "resilient"
    hops = []
    for m in group.members:
        o = objects.get(m.id)
        nh = Nexthop(gateway=o.gateway if o else None, dev=o.dev if o else f"id {m.id}",
                     flags=tuple(o.flags) if o else ())
        hops.append(_hop(nh, owners, counts.get(m.id, 0) if resilient and group.bucket_table else None, m.weight))
    if resilient:
        kind = f"resilient group {group.id}" + (f" ({group.buckets} buckets)" if group.buckets else "")
    else:
        kind = f"{group.type} group {group.id}"
    return GroupView(name, role, prefix, kind, tuple(hops), stale, _rib_text(state, prefix))


def _rib_text(state: DeviceState, prefix: str) -> str:
    from anycast_tui.model.rib import rib_fib

    c = rib_fib(state, prefix)
    return "" if c is None else c.text + ("" if c.agree else " ≠")


_GROUPS = IdentityMemo(3)  # as _OWNERS: the Fabric view's topology and the Groups view ask for the same snapshot


def group_views(snapshot: FabricSnapshot | None, prefixes: Iterable[str]) -> list[GroupView]:
    """Every device's group to each of ``prefixes`` (devices in role order), worked out once per snapshot
    object and prefixes.  Do not modify the result."""
    if snapshot is None:
        return []
    prefixes = tuple(prefixes)
    return _GROUPS.get(snapshot, prefixes, lambda: _group_views(snapshot, prefixes))


# (device state, prefix, owners' generation) -> its GroupView: a new snapshot works out only its changed devices'
_GROUP_OF = state_memo(8192)


def _group_views(snapshot: FabricSnapshot, prefixes: tuple[str, ...]) -> list[GroupView]:
    gen, owners = _owners(snapshot)
    out = []
    states = sorted(snapshot.devices.values(), key=lambda s: (ROLE_ORDER.index(s.device.role), s.device.name))
    for prefix in prefixes:
        for st in states:
            if st.collected_at_ms is None:
                continue
            out.append(_GROUP_OF.get(st, (prefix, gen), lambda: group_view(st, prefix, owners)))  # noqa: B023
    return out


# --------------------------------------------------------------------------- events

REMOVING = frozenset({EventKind.NEXTHOP_REMOVED, EventKind.ROUTE_WITHDRAWN, EventKind.LINK_DOWN})
ADDING = frozenset({EventKind.NEXTHOP_ADDED, EventKind.ROUTE_ANNOUNCED, EventKind.LINK_UP})


def event_glyph(kind: EventKind) -> str:
    if kind in (EventKind.DEVICE_UNREACHABLE, EventKind.PLACEMENT_DISAGREES):
        return "✗"
    if kind is EventKind.DEVICE_BACK:
        return "✓"
    if kind in REMOVING:
        return "−"
    if kind in ADDING:
        return "+"
    return "~"


ALWAYS_SHOWN = frozenset({EventKind.DEVICE_UNREACHABLE, EventKind.DEVICE_BACK, EventKind.GROUP_CHANGED,
                          EventKind.BUCKETS_CHANGED, EventKind.PLACEMENT_DISAGREES})


def concerns(ev: Event, prefixes: Iterable[str]) -> bool:
    """True for events about an anycast prefix, a device's reachability, or a nexthop group."""
    return ev.kind in ALWAYS_SHOWN or (ev.prefix is not None and ev.prefix in prefixes)


def placement_summary(rows: Sequence[DeviceRow]) -> list[tuple[Placement, int, list[str]]]:
    """(quality, how many devices, their names) per placement quality present, exact first."""
    out = []
    for p in Placement:
        names = [r.name for r in rows if r.placement is p]
        if names:
            out.append((p, len(names), names))
    return out


def placement_hints(rows: Sequence[DeviceRow]) -> list[tuple[Placement, list[str], str]]:
    """(quality, devices, hint) per distinct hint of the devices that are not exact (unknown first)."""
    by: dict[tuple[Placement, str], list[str]] = {}
    for r in rows:
        if r.placement is not None and r.placement is not Placement.EXACT and r.hint:
            by.setdefault((r.placement, r.hint), []).append(r.name)
    order = {Placement.UNKNOWN: 0, Placement.APPROXIMATE: 1}
    return [(p, names, hint) for (p, hint), names in sorted(by.items(), key=lambda kv: order[kv[0][0]])]


def hash_summary(rows: Sequence[DeviceRow]) -> str:
    """One phrase for every device's hash settings: ``L4 seed 1234`` or ``L4, 10 different seeds``."""
    labels = [r.hash for r in rows if r.hash != "-"]
    if not labels:
        return "-"
    policies = sorted({lb.split(" ", 1)[0] for lb in labels})
    seeds = {lb.split(" ", 1)[1] for lb in labels}
    if len(seeds) == 1:
        return f"{'/'.join(policies)} {seeds.pop()}"
    return f"{'/'.join(policies)}, {len(seeds)} different seeds"


def impact_text(counts: Mapping[str, int], *, short: bool = False) -> str:
    """``1684/10000 flows moved: 872 TCP reset, 812 UDP continue`` (short: ``1684 moved, 872 TCP reset``)."""
    if short:
        return f"{counts['moved']} moved, {counts['tcp_reset']} TCP reset" + live_text(counts, short=True)
    return (f"{counts['moved']}/{counts['flows']} flows moved: {counts['tcp_reset']} TCP reset, "
            f"{counts['udp']} UDP continue" + live_text(counts))


def live_text(counts: Mapping[str, int], *, short: bool = False) -> str:
    """`` · live: 12 TCP flows moved (reset), 3 UDP`` (short: `` · live 12 reset, 3 UDP``) when live flows
    were counted (impacttracker.ImpactTracker), else ""."""
    if not counts.get("live_flows"):
        return ""
    if short:
        return f" · live {counts['live_tcp_reset']} reset, {counts['live_udp']} UDP"
    return f" · live: {counts['live_tcp_reset']} TCP flows moved (reset), {counts['live_udp']} UDP"


def event_line(ev: Event) -> str:
    """One plain line: ``HH:MM:SS.mmm glyph device detail`` (headless output)."""
    return f"{hms(ev.time_ms)} {event_glyph(ev.kind)} {safe(ev.device)} {event_text(ev)}"


def health_line(name: str, before: Health | None, after: Health, at_ms: int) -> str | None:
    """A headless line for a health change no event reports: a device that never answered (yet)."""
    was = before.status if before is not None else HealthStatus.UNKNOWN
    if was is HealthStatus.UNKNOWN and after.status is HealthStatus.ERROR:
        return f"{hms(after.since_ms or at_ms)} ✗ {safe(name)} not answering: {safe(after.error or 'no answer')}"
    return None


def never_answered(health: Mapping[str, Health]) -> list[str]:
    """``leaf03 (connection refused)`` for every device with no good poll at all."""
    return [f"{safe(n)} ({safe(h.error or 'no answer yet')})" for n, h in sorted(health.items())
            if h.last_ok_ms is None and h.status is not HealthStatus.OK]


def duration_text(ms: int) -> str:
    """``4.2 s``, ``3 min 12 s``, ``2 h 05 min``."""
    s = ms / 1000
    if s < 60:
        return f"{s:.1f} s"
    if s < 3600:
        return f"{int(s // 60)} min {int(s % 60):02d} s"
    return f"{int(s // 3600)} h {int(s % 3600 // 60):02d} min"


def incident_head(inc: Incident, now_ms: int) -> str:
    """``#3 failure 12:00:05.120 open 4.2 s`` / ``… → 12:00:09.300 (4.2 s)``."""
    end = "open " + duration_text(inc.duration_ms(now_ms)) if inc.open else \
        f"→ {hms(inc.end_ms)} ({duration_text(inc.duration_ms(now_ms))})"
    return f"#{inc.id} {inc.kind.value} {hms(inc.start_ms)} {end}"


def incident_line(inc: Incident, imp: IncidentImpact | None, now_ms: int) -> str:
    """One plain line per incident (headless output): head, cause, the onset's impact, the restore's."""
    line = f"{incident_head(inc, now_ms)} · {safe(inc.cause)} · {phase_text(imp.headline if imp else None)}"
    if imp is not None and (alt := resilient_text(imp)):
        line += f" · {alt}"
    if imp is not None and imp.onset is not None and imp.restore is not None:
        line += f" · restore: {estimated_text(imp.restore)}"
        if lt := phase_live_text(imp.restore):
            line += f", {lt}"
    return line


@dataclass(frozen=True, slots=True)
class LogRow:
    """One line of the Events view: an incident's header, or an event (``nested`` under its incident)."""

    incident: Incident | None = None
    event: Event | None = None
    nested: bool = False


def log_rows(events: Sequence[Event], incident_of: Callable[[Event], Incident | None] | None) -> list[LogRow]:
    """Newest first: each incident's header where its newest shown event is, its shown events under it
    (newest first); events of no incident stand alone."""
    if incident_of is None:
        return [LogRow(event=e) for e in reversed(events)]
    of = [incident_of(e) for e in events]
    members: dict[int, list[Event]] = {}
    for e, inc in zip(events, of):
        if inc is not None:
            members.setdefault(inc.id, []).append(e)
    rows: list[LogRow] = []
    done: set[int] = set()
    for e, inc in zip(reversed(events), reversed(of)):
        if inc is None:
            rows.append(LogRow(event=e))
        elif inc.id not in done:
            done.add(inc.id)
            rows.append(LogRow(incident=inc))
            rows.extend(LogRow(incident=inc, event=m, nested=True) for m in reversed(members[inc.id]))
    return rows


def incident_numbers(imp: IncidentImpact | None, *, short: bool = False) -> str:
    """The incident's headline numbers, estimated and measured apart:
    ``3,308 moved · 1,645 TCP reset (est. of 10,000 synthetic) · live 16 TCP reset, UDP n/a``."""
    p = imp.headline if imp is not None else None
    if p is None:
        return "computing…"
    e = p.estimated
    sample = p.sample.replace(" synthetic flows", " synthetic")
    text = f"{e.moved:,} moved · {e.tcp_reset:,} TCP reset" + (" est." if short else f" (est. of {sample})")
    if p.live is not None:
        udp = "UDP n/a" if p.live.udp_moved is None else f"{p.live.udp_moved:,} UDP"
        text += f" · live {p.live.tcp_reset:,} TCP reset, {udp}"
    if p.sampled is not None:
        sc = p.sampled
        text += (f" · sampled {sc.moved:,}/{sc.flows:,} moved" if short else
                 f" · sampled {sc.moved:,} of {sc.flows:,} moved, {sc.tcp_reset:,} TCP reset (at {sc.rate})")
    return text


def incident_bar_text(inc: Incident, imp: IncidentImpact | None, now_ms: int, pos: int, total: int) -> str:
    """The event bar for a selected incident: state and numbers first (they must fit 80 columns), then the
    cause, then when: ``#1 1/1 open 4.2 s · 3,308 moved · 1,645 TCP reset est. · leaf03 unreachable …``."""
    state = f"open {duration_text(inc.duration_ms(now_ms))}" if inc.open else \
        f"over after {duration_text(inc.duration_ms(now_ms))}"
    return (f"#{inc.id} {pos}/{total} {state} · {incident_numbers(imp, short=True)} · {safe(inc.cause)} · "
            f"{inc.kind.value} from {hms(inc.start_ms)}")


def incident_row_text(inc: Incident, imp: IncidentImpact | None, now_ms: int) -> str:
    """An incident's line in the Events view: head, numbers, cause."""
    return f"{incident_head(inc, now_ms)} · {incident_numbers(imp)} · {safe(inc.cause)}"


def event_text(ev: Event, owners: Mapping[str, str] | None = None, *, short: bool = False,
               known: Iterable[str] = ()) -> str:
    """The event's detail without the leading device name (the log has a device column),
    naming the neighbour device behind a next hop when ``owners`` knows its gateway.
    ``short`` keeps only the neighbour's name; the prefix is dropped when it is one of ``known``
    (the prefixes the panel's title names)."""
    d = ev.detail
    d = d[len(ev.device) + 1:] if d.startswith(ev.device + " ") else d
    nh = ev.nexthop
    if owners and nh is not None and nh.gateway in owners:
        label = nexthop_label(nh)
        d = d.replace(label, owners[nh.gateway] if short else f"{owners[nh.gateway]} ({label})", 1)
    if ev.prefix in known and d.startswith(f"{ev.prefix}: "):
        d = d[len(ev.prefix) + 2:]
    return safe(d)


@dataclass(frozen=True, slots=True)
class Counts:
    total: int
    removed: int
    added: int
    changed: int
    devices_ok: int
    devices: int


def counts(snapshot: FabricSnapshot | None, events: Iterable[Event]) -> Counts:
    feed = EventFeed(())
    feed.add(events)
    return feed.counts(snapshot)


class EventFeed:
    """Incremental view of a timeline's events: each event is looked at once, whatever the log's length.

    Keeps the newest ``keep`` events and the newest ``keep`` relevant ones (:func:`concerns`), and
    counts every event seen, by glyph class.
    """

    def __init__(self, prefixes: Iterable[str], keep: int = 10_000) -> None:
        self.prefixes = frozenset(prefixes)
        self.all: deque[Event] = deque(maxlen=keep)
        self.relevant: deque[Event] = deque(maxlen=keep)
        self.total = self.relevant_total = self.removed = self.added = self.changed = 0
        self._seen = 0  # timeline position: dropped + len(events) when last pulled

    def pull(self, events: Sequence[Event], dropped: int = 0) -> bool:
        """Take the events appended since the last pull (``dropped``: how many the timeline evicted)."""
        n_new = dropped + len(events) - self._seen
        self._seen = dropped + len(events)
        if n_new <= 0:
            return False
        self.add(events[max(0, len(events) - n_new):])
        return True

    def add(self, events: Iterable[Event]) -> None:
        for ev in events:
            self.total += 1
            g = event_glyph(ev.kind)
            if g in ("−", "✗"):
                self.removed += 1
            elif g in ("+", "✓"):
                self.added += 1
            else:
                self.changed += 1
            self.all.append(ev)
            if concerns(ev, self.prefixes):
                self.relevant_total += 1
                self.relevant.append(ev)

    def counts(self, snapshot: FabricSnapshot | None) -> Counts:
        devs = snapshot.devices.values() if snapshot else ()
        ok = sum(1 for s in devs if s.health.status is HealthStatus.OK)
        return Counts(self.total, self.removed, self.added, self.changed, ok, len(devs))
