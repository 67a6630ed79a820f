"""Incidents: the events of one cause, grouped by topology and time.

A device going down shows up as several events on several devices, in
whatever order their polls answer: ``leaf03 unreachable``, ``spine01 …: next
hop via leaf03 removed``, the same on spine02.  An :class:`Incident` gathers
them into one answer with a start, an end, a one-line cause, the devices
involved and the anycast prefixes touched.

Grouping is by **elements**, never by poll order.  Each anycast-relevant event
names the elements it concerns:

* a device unreachable / back: the device, and every link it has on an
  anycast path (``link:A|B``);
* a link down / up: the link (its peer found by a shared subnet, or by the
  anycast next hops leaving through it), else the interface; a device all
  of whose links are down counts as failed (``dev:X``);
* a next hop removed / added / re-weighted / (un)flagged on D via N for
  prefix P: the link D–N and N's route to P (``route:N:P``) — so both spines
  losing leaf03 land together, and a spine losing leaf02 joins leaf02's own
  withdrawal of P;
* a route to P withdrawn / announced on D: D's route to P and the links to
  its former (or new) next hops;
* a nexthop group of an anycast route changing members: the group and the
  links to the members that left or joined; its buckets moving: the group.

Besides: the changes one poll of one device found are one incident (a spine
losing all its downlinks at once); and a device whose own route to P changed
is the cause of its upstream devices dropping it within ``CAUSE_WINDOW_MS``
(a server's drain: its leaf loses it and detours over the spines, the spines
drop the leaf).

An event joins every open incident it shares an element with (merging them
when it bridges several); an onset (something left) that shares none opens a
new incident.  What joins a failure while it is on (a BGP detour) is part of
its onset and is undone by its restore.  An incident stays open while anything it removed is still
missing; the restore events that bring everything back close it (``end_ms``).
Late restore or re-balancing events that share an element with an incident
closed less than ``window_ms`` ago still join it.  An addition that undoes
nothing opens an ``addition`` incident; a pure change (weights, buckets) a
``change`` one; both are over as soon as they happen.

:class:`IncidentBook` is fed the timeline's changes in order (pure
bookkeeping, no I/O, no threads) and keeps, per incident, the snapshots its
impact is computed on (``model.incident_impact``).
"""

from __future__ import annotations

import enum
import functools
import ipaddress
from dataclasses import dataclass, field, replace
from typing import Iterable

from anycast_tui.model.events import link_up as _link_up
from anycast_tui.model.paths import address_map
from anycast_tui.model.types import DeviceState, Event, EventKind, FabricSnapshot, Role, Route, select_routes

INCIDENT_WINDOW_MS = 30_000
CAUSE_WINDOW_MS = 15_000  # a device's route change and its upstream's removal of it: one cause this close
MAX_INCIDENTS = 10_000  # closed incidents kept (oldest dropped first; counted in ``dropped``)


class IncidentKind(str, enum.Enum):
    FAILURE = "failure"  # something left: a device, link, next hop or route
    ADDITION = "addition"  # something joined that no open incident had removed
    CHANGE = "change"  # weights or bucket assignments changed, nothing left or joined


class Phase(str, enum.Enum):
    ONSET = "onset"
    RESTORE = "restore"
    CHANGE = "change"


_ONSET = {EventKind.DEVICE_UNREACHABLE, EventKind.LINK_DOWN, EventKind.NEXTHOP_REMOVED, EventKind.ROUTE_WITHDRAWN}
_RESTORE = {EventKind.DEVICE_BACK, EventKind.LINK_UP, EventKind.NEXTHOP_ADDED, EventKind.ROUTE_ANNOUNCED}
_UNUSABLE = {"dead", "linkdown"}


@dataclass(frozen=True, slots=True)
class Incident:
    """One cause and everything it did, as far as the polls so far tell."""

    id: int
    kind: IncidentKind
    start_ms: int
    end_ms: int | None  # None while open (something it removed is still missing)
    cause: str  # one line: "leaf03 unreachable (connection refused); spine01, spine02 lost next hop leaf03"
    devices: tuple[str, ...]  # devices with events in it, sorted
    prefixes: tuple[str, ...]  # anycast prefixes its events touched (all of them for device/link events)
    events: tuple[Event, ...]  # onset (or addition / change) events, in arrival order
    restore_events: tuple[Event, ...] = ()
    restore: str = ""  # one line on what came back, once anything did
    outstanding: int = 0  # removals not undone yet

    @property
    def open(self) -> bool:
        return self.end_ms is None

    def duration_ms(self, now_ms: int) -> int:
        return (self.end_ms if self.end_ms is not None else now_ms) - self.start_ms

    @property
    def all_events(self) -> tuple[Event, ...]:
        return self.events + self.restore_events


@dataclass
class _Entry:
    """An incident being built, and the snapshots its impact needs."""

    id: int
    kind: IncidentKind
    elements: set[str] = field(default_factory=set)
    near: set[str] = field(default_factory=set)
    events: list[Event] = field(default_factory=list)
    restore_events: list[Event] = field(default_factory=list)
    outstanding: set[tuple] = field(default_factory=set)
    reactions: set[tuple] = field(default_factory=set)  # what joined during the onset (a detour), to undo
    src: set[str] = field(default_factory=set)  # "route:D:P" of devices whose own route to P changed
    before: FabricSnapshot | None = None  # the fabric just before its first event
    onset_states: dict[str, DeviceState] = field(default_factory=dict)  # device -> state after its last onset event
    restore_before: FabricSnapshot | None = None
    restore_states: dict[str, DeviceState] = field(default_factory=dict)
    end_ms: int | None = None
    last_ms: int = 0
    roles: dict[str, Role] = field(default_factory=dict)
    prefixes: set[str] = field(default_factory=set)
    owners: dict[str, str] = field(default_factory=dict)  # gateway -> device, for the cause line
    peers: dict[str, str] = field(default_factory=dict)  # "device ifname" -> device at the other end
    incident: Incident | None = None  # cached view, None when stale
    phase_cache: tuple[PhaseSnapshots | None, PhaseSnapshots | None] | None = None  # None when stale
    phase_cache_prev: tuple[PhaseSnapshots | None, PhaseSnapshots | None] | None = None

    def start_ms(self) -> int:
        return min(e.time_ms for e in self.events + self.restore_events)


@dataclass(frozen=True, slots=True)
class PhaseSnapshots:
    """The fabric before and after one phase of an incident (after = before with the phase's device states)."""

    before: FabricSnapshot
    after: FabricSnapshot


@dataclass(frozen=True, slots=True)
class _Classified:
    phase: Phase
    elements: frozenset[str]
    key: tuple | None  # what it removed / restored (onset / restore), for closing
    near: frozenset[str] = frozenset()  # "device@time": the changes one poll of a device found are one incident
    src: frozenset[str] = frozenset()  # "route:D:P": this device's own route to P changed


class IncidentBook:
    """Incidents of a timeline: ``feed(before, after, events)`` per change, in order."""

    def __init__(self, anycast_prefixes: Iterable[str], *, window_ms: int = INCIDENT_WINDOW_MS,
                 max_incidents: int = MAX_INCIDENTS) -> None:
        self.prefixes = tuple(anycast_prefixes)
        self.window_ms = window_ms
        self.max_incidents = max_incidents
        self._entries: dict[int, _Entry] = {}
        self._next_id = 1
        self._by_event: dict[Event, int] = {}
        self.merged: dict[int, int] = {}  # incident id merged away -> the id it lives on as
        self.dropped = 0
        self._routes_cache: dict[int, tuple[tuple[Route, ...], tuple[Route, ...]]] = {}
        self._adj: dict[str, set[str]] = {}  # anycast adjacency as last seen (a failed device keeps its links)
        self._owners: dict[str, str] = {}  # address -> device as last seen (a failed device keeps its addresses)
        self._peers: dict[tuple[str, str], str] = {}  # (device, interface) -> device at the other end, last seen
        self._group_events: dict[tuple[str, int, int], int] = {}  # (device, group, time) -> incident of its change
        self._seen_routes: dict[str, tuple[Route, ...]] = {}
        self._waiting: dict[str, set[str]] = {}  # anycast gateway with no known owner -> devices using it
        self._waits_on: dict[str, set[str]] = {}  # device -> those gateways of its
        self._owners_stale = True  # ``_owners`` must be computed from a whole snapshot before it is kept up to date
        self._owners_full = 0  # addresses the last whole computation found (bounds what is remembered)
        self._known: set[str] = set()  # devices learnt at least once

    def _learn(self, before: FabricSnapshot | None, after: FabricSnapshot, ctx: "_Context",
               changed: Iterable[str] | None = None, gained: set[str] | None = None) -> None:
        """Remember which devices forward the anycast prefixes to which: only the devices this change updated
        (one per poller update, or per bus message) and those waiting for the owner of a gateway: the ones whose
        gateway found an owner (``gained``, kept up to date per device), or all of them when an address may have
        appeared (a device new or its interfaces changed) and the owners were computed from the whole fabric."""
        old = before.devices if before is not None else {}
        if changed is not None and old:
            names = {n for n in changed if n in after.devices and old.get(n) is not after.devices[n]}
        else:
            names = {n for n, st in after.devices.items() if old.get(n) is not st} if old else set(after.devices)
        if len(self._known) < len(after.devices):  # a book started on a running fabric: learn it all once
            names |= {n for n in after.devices if n not in self._known}
        if gained is not None:  # only the gateways that found an owner, of devices that did not change
            for name in set().union(*(self._waiting.get(a, ()) for a in gained)) - names:
                self._resolve(name, gained & self._waits_on[name], after, ctx)
            woken: set[str] = set()
        elif not old or any(n not in old or _interfaces_differ(old[n], after.devices[n]) for n in names):
            woken = set(self._waits_on)
        else:
            woken = set()
        for name in names | woken:
            st = after.devices.get(name)
            self._known.add(name)
            for g in self._waits_on.pop(name, ()):
                self._unwait(name, g)
            if st is None or self._seen_routes.get(name) is st.routes:
                continue
            missing: set[str] = set()
            for r in ctx.anycast_routes(st):
                for nh in r.nexthops:
                    o = ctx.owner(nh.gateway)
                    if o is None:
                        if nh.gateway:
                            missing.add(nh.gateway)
                    elif o != name:
                        self._adj.setdefault(name, set()).add(o)
                        self._adj.setdefault(o, set()).add(name)
            if not missing:
                self._seen_routes[name] = st.routes
            else:  # its gateways' owners not polled yet: look again when one of them is
                self._waits_on[name] = missing
                for g in missing:
                    self._waiting.setdefault(g, set()).add(name)

    def _resolve(self, name: str, found: set[str], after: FabricSnapshot, ctx: "_Context") -> None:
        """Gateways ``found`` of waiting device ``name`` have an owner now: its adjacency with them."""
        st = after.devices.get(name)
        for g in found:
            o = ctx.owner(g)
            if o is None:
                continue
            if o != name:
                self._adj.setdefault(name, set()).add(o)
                self._adj.setdefault(o, set()).add(name)
            self._waits_on[name].discard(g)
            self._unwait(name, g)
        if not self._waits_on[name]:
            del self._waits_on[name]
            if st is not None:
                self._seen_routes[name] = st.routes

    def _unwait(self, name: str, g: str) -> None:
        """Device ``name`` no longer waits for the owner of gateway ``g``."""
        waiting = self._waiting[g]
        waiting.discard(name)
        if not waiting:
            del self._waiting[g]

    def _track_owners(self, before: FabricSnapshot, after: FabricSnapshot, changed: Iterable[str]) -> set[str]:
        """Bring ``_owners`` up to date with the devices ``changed`` replaced (their addresses; the first device by
        name keeps an address two hold, as ``paths.address_map``); the addresses whose owner changed."""
        mem, gained = self._owners, set()
        for n in changed:
            st, old = after.devices.get(n), before.devices.get(n)
            if st is None or (old is not None and not _interfaces_differ(old, st)):
                continue
            for itf in st.interfaces:
                for a in itf.addresses:
                    cur = mem.get(a.local)
                    if cur == n or (cur is not None and cur < n and cur in after.devices
                                    and _holds(after.devices[cur], a.local)):
                        continue
                    mem[a.local] = n
                    gained.add(a.local)
        if len(mem) > 4 * self._owners_full + 4096:  # bounded: compute them afresh next time
            self._owners_stale = True
        return gained

    # ------------------------------------------------------------------ queries

    def incidents(self) -> list[Incident]:
        """Every incident, oldest first."""
        return sorted((self._view(e) for e in self._entries.values()), key=lambda i: (i.start_ms, i.id))

    def get(self, incident_id: int) -> Incident | None:
        incident_id = self.resolve(incident_id)
        e = self._entries.get(incident_id)
        return self._view(e) if e is not None else None

    def resolve(self, incident_id: int) -> int:
        while incident_id in self.merged:
            incident_id = self.merged[incident_id]
        return incident_id

    def of_event(self, event: Event) -> Incident | None:
        iid = self._by_event.get(event)
        return self.get(iid) if iid is not None else None

    def phases(self, incident_id: int) -> tuple[PhaseSnapshots | None, PhaseSnapshots | None]:
        """(onset, restore) snapshots of an incident; None for a phase it has not had."""
        e = self._entries.get(self.resolve(incident_id))
        if e is None or e.before is None:
            return None, None
        if e.phase_cache is None:
            onset = PhaseSnapshots(e.before, _with_states(e.before, e.onset_states)) if e.onset_states else None
            restore = None
            if e.restore_before is not None and e.restore_states:
                restore = PhaseSnapshots(e.restore_before, _with_states(e.restore_before, e.restore_states))
            old = e.phase_cache_prev
            # a phase whose snapshots did not change is handed back as the same object (callers may reuse results)
            if old is not None and onset is not None and old[0] is not None and _same(old[0], onset):
                onset = old[0]
            if old is not None and restore is not None and old[1] is not None and _same(old[1], restore):
                restore = old[1]
            e.phase_cache = e.phase_cache_prev = (onset, restore)
        return e.phase_cache

    # ------------------------------------------------------------------ input

    def feed(self, before: FabricSnapshot | None, after: FabricSnapshot, events: Iterable[Event],
             changed: Iterable[str] | None = None) -> set[int]:
        """Take one timeline change; the ids of the incidents it created or changed.  ``changed``: the devices
        whose state it replaced (``timeline.Change.touched``; None: any may have)."""
        ctx = _Context(before or after, after, self.prefixes, self._routes_cache, self._adj, self._owners,
                       self._peers)
        gained = None
        if changed is not None and before is not None and not self._owners_stale:
            gained = self._track_owners(before, after, changed)  # per device: not the whole fabric per message
            ctx.use_owners()
        self._learn(before, after, ctx, changed, gained)
        if ctx.full_owners is not None:  # computed from the whole fabric: kept up to date from here on
            self._owners_stale, self._owners_full = False, ctx.full_owners
        elif gained is None:  # a change not tracked per device, and no whole computation: compute afresh next
            self._owners_stale = True
        if before is None:
            return set()
        touched: set[int] = set()
        for ev in events:
            c = ctx.classify(ev)
            if c is None:
                continue
            iid = self._place(ev, c, before, after, ctx)
            touched.add(iid)
        if len(self._routes_cache) > 4 * max(1, len(after.devices)) + 64:
            self._routes_cache.clear()
        self._trim()
        return {self.resolve(i) for i in touched}

    def _place(self, ev: Event, c: _Classified, before: FabricSnapshot, after: FabricSnapshot,
               ctx: "_Context") -> int:
        t = ev.time_ms
        if ev.kind is EventKind.BUCKETS_CHANGED:
            gkey = (ev.device, _group_id(ev), t)
            if gkey in self._group_events and self.resolve(self._group_events[gkey]) in self._entries:
                return self._join(self._entries[self.resolve(self._group_events[gkey])], ev, c, before, after, ctx)
        open_hits = [e for e in self._entries.values() if e.end_ms is None and (
            e.elements & c.elements or e.near & c.near
            or ((e.src & c.elements or e.elements & c.src) and abs(t - e.last_ms) <= CAUSE_WINDOW_MS))]
        recent = [e for e in self._entries.values() if e.end_ms is not None and e.elements & c.elements
                  and t - max(e.end_ms, e.last_ms) <= self.window_ms]
        if open_hits:
            entry = self._merge(open_hits)
        elif c.phase is not Phase.ONSET and recent:
            entry = max(recent, key=lambda e: e.last_ms)
        else:
            kind = {Phase.ONSET: IncidentKind.FAILURE, Phase.RESTORE: IncidentKind.ADDITION,
                    Phase.CHANGE: IncidentKind.CHANGE}[c.phase]
            entry = _Entry(self._next_id, kind, before=before)
            self._next_id += 1
            self._entries[entry.id] = entry
        if ev.kind is EventKind.GROUP_CHANGED:
            if len(self._group_events) > 4096:
                self._group_events.clear()
            self._group_events[(ev.device, _group_id(ev), t)] = entry.id
        return self._join(entry, ev, c, before, after, ctx)

    def _join(self, entry: _Entry, ev: Event, c: _Classified, before: FabricSnapshot, after: FabricSnapshot,
              ctx: "_Context") -> int:
        t = ev.time_ms
        entry.elements |= c.elements
        entry.near |= c.near
        entry.src |= c.src
        entry.last_ms = max(entry.last_ms, t)
        entry.roles.update(ctx.roles)
        entry.prefixes |= ctx.prefixes_of(ev)
        name = ev.device
        state = after.devices.get(name)
        if ev.kind in (EventKind.LINK_DOWN, EventKind.LINK_UP):
            peer = ctx.link_peer(ev.device, ev.subject)
            if peer is not None:
                entry.peers[f"{ev.device} {ev.subject}"] = peer
        if ev.nexthop is not None and ev.nexthop.gateway and (o := ctx.owner(ev.nexthop.gateway)) is not None:
            entry.owners[ev.nexthop.gateway] = o
        restoring = False
        if entry.kind is IncidentKind.FAILURE:
            if c.phase is Phase.RESTORE:
                if c.key in entry.outstanding or entry.restore_events or c.key is None:
                    restoring = True
                else:  # something joined while the failure was on (BGP's detour): part of the onset, undone later
                    entry.reactions.add(c.key)
            elif c.phase is Phase.ONSET:
                if c.key is not None and c.key in entry.reactions:  # a detour taken away: the restore
                    restoring = True
                    entry.reactions.discard(c.key)
            else:
                restoring = entry.restore_before is not None
        if restoring:
            if entry.restore_before is None:
                entry.restore_before = before
            entry.restore_events.append(ev)
            if state is not None:
                entry.restore_states[name] = state
            if c.key is not None and c.phase is Phase.RESTORE:
                entry.outstanding.discard(c.key)
            if not entry.outstanding and not entry.reactions and entry.end_ms is None:
                entry.end_ms = t
        else:
            entry.events.append(ev)
            if state is not None:
                entry.onset_states[name] = state
            if c.phase is Phase.ONSET and c.key is not None and entry.kind is IncidentKind.FAILURE:
                entry.outstanding.add(c.key)
                if entry.end_ms is not None and entry.kind is IncidentKind.FAILURE:
                    entry.end_ms = None  # cannot happen for a closed one (onsets never join it); kept safe
            if entry.kind is not IncidentKind.FAILURE and entry.end_ms is None:
                entry.end_ms = t  # additions and changes are over as they happen
            elif entry.kind is not IncidentKind.FAILURE:
                entry.end_ms = max(entry.end_ms, t)
        entry.incident = None
        entry.phase_cache = None
        self._by_event[ev] = entry.id
        return entry.id

    def _merge(self, hits: list[_Entry]) -> _Entry:
        hits.sort(key=lambda e: (e.start_ms(), e.id))
        keep = hits[0]
        for other in hits[1:]:
            keep.elements |= other.elements
            keep.near |= other.near
            keep.src |= other.src
            keep.reactions |= other.reactions
            keep.events = sorted(keep.events + other.events, key=lambda e: e.time_ms)
            keep.restore_events = sorted(keep.restore_events + other.restore_events, key=lambda e: e.time_ms)
            keep.outstanding |= other.outstanding
            for name, st in other.onset_states.items():
                keep.onset_states.setdefault(name, st)
            for name, st in other.restore_states.items():
                keep.restore_states.setdefault(name, st)
            if keep.restore_before is None:
                keep.restore_before = other.restore_before
            keep.last_ms = max(keep.last_ms, other.last_ms)
            keep.roles.update(other.roles)
            keep.prefixes |= other.prefixes
            keep.owners.update(other.owners)
            keep.peers.update(other.peers)
            if keep.kind is not IncidentKind.FAILURE and other.kind is IncidentKind.FAILURE:
                keep.kind = IncidentKind.FAILURE
                keep.before = other.before
            for ev in other.events + other.restore_events:
                self._by_event[ev] = keep.id
            self.merged[other.id] = keep.id
            del self._entries[other.id]
        keep.incident = None
        keep.phase_cache = None
        if keep.kind is IncidentKind.FAILURE:
            keep.end_ms = None if keep.outstanding else keep.end_ms
        return keep

    def _trim(self) -> None:
        excess = len(self._entries) - self.max_incidents
        if excess <= 0:
            return
        closed = sorted((e for e in self._entries.values() if e.end_ms is not None), key=lambda e: e.last_ms)
        for e in closed[:excess]:
            del self._entries[e.id]
            for ev in e.events + e.restore_events:
                self._by_event.pop(ev, None)
            self.dropped += 1

    def _view(self, e: _Entry) -> Incident:
        if e.incident is None:
            devices = tuple(sorted({ev.device for ev in e.events + e.restore_events}))
            prefixes = tuple(p for p in self.prefixes if p in e.prefixes) or self.prefixes
            e.incident = Incident(e.id, e.kind, e.start_ms(), e.end_ms, cause_line(e.events, e.roles, e.owners, e.peers),
                                  devices, prefixes, tuple(e.events), tuple(e.restore_events),
                                  cause_line(e.restore_events, e.roles, e.owners, e.peers) if e.restore_events else "",
                                  len(e.outstanding))
        return e.incident


def _same(a: PhaseSnapshots, b: PhaseSnapshots) -> bool:
    """The same fabric on both sides: same device state objects (states are immutable)."""
    def same(x: FabricSnapshot, y: FabricSnapshot) -> bool:
        return x is y or (x.devices.keys() == y.devices.keys()
                          and all(x.devices[n] is y.devices[n] for n in x.devices))
    return same(a.before, b.before) and same(a.after, b.after)


def _interfaces_differ(a: DeviceState, b: DeviceState) -> bool:
    return a.interfaces is not b.interfaces and a.interfaces != b.interfaces


def _holds(state: DeviceState, address: str) -> bool:
    return any(a.local == address for itf in state.interfaces for a in itf.addresses)


def _with_states(base: FabricSnapshot, states: dict[str, DeviceState]) -> FabricSnapshot:
    devices = dict(base.devices)
    devices.update(states)
    return replace(base, devices=devices)


# --------------------------------------------------------------------------- classification


@functools.lru_cache(maxsize=65536)
def _address(text: str) -> tuple[int, int] | None:
    """An address as (version, integer), None when it is not one.  Cached: each link-peer question reads every
    device's addresses, and a bus viewer asks one per next-hop event, on its event loop."""
    try:
        a = ipaddress.ip_address(text)
    except ValueError:
        return None
    return a.version, int(a)


def _in_net(text: str, version: int, network: int, mask: int) -> bool:
    """Whether address ``text`` is in the network (``ipaddress``'s test, on integers)."""
    a = _address(text)
    return a is not None and a[0] == version and a[1] & mask == network


class _Context:
    """Topology of one change, computed on demand: address owners, anycast routes, subnet peers."""

    def __init__(self, before: FabricSnapshot, after: FabricSnapshot, prefixes: tuple[str, ...],
                 routes_cache: dict, adjacency: dict[str, set[str]], memory: dict[str, str],
                 peers: dict[tuple[str, str], str]) -> None:
        self.before, self.after, self.prefixes = before, after, prefixes
        self.adjacency = adjacency
        self.memory = memory  # owners seen in earlier changes, updated with this one's
        self.peers = peers
        self._owners: dict[str, str] | None = None
        self.full_owners: int | None = None  # the addresses found when computed from the whole fabric
        self._cache = routes_cache
        self._roles: dict[str, Role] | None = None

    @property
    def roles(self) -> dict[str, Role]:
        if self._roles is None:
            self._roles = {n: s.device.role for n, s in self.after.devices.items()}
        return self._roles

    @property
    def owners(self) -> dict[str, str]:
        if self._owners is None:
            owners = address_map(self.after)
            for a, n in address_map(self.before).items():
                owners.setdefault(a, n)
            self.memory.update(owners)
            if len(self.memory) > 4 * len(owners) + 4096:  # bounded: forget addresses no longer held
                self.memory.clear()
                self.memory.update(owners)
            self._owners = self.memory
            self.full_owners = len(owners)
        return self._owners

    def use_owners(self) -> None:
        """The owners remembered are up to date (``IncidentBook._track_owners``): no whole-fabric computation."""
        self._owners = self.memory

    def anycast_routes(self, state: DeviceState | None) -> tuple[Route, ...]:
        if state is None:
            return ()
        hit = self._cache.get(id(state.routes))
        if hit is not None and hit[0] is state.routes:
            return hit[1]
        want = set(self.prefixes)
        found = select_routes(state.routes, want, lambda k: k[0] != "local")
        self._cache[id(state.routes)] = (state.routes, found)
        return found

    def prefixes_of(self, ev: Event) -> set[str]:
        if ev.prefix is not None and ev.prefix in self.prefixes:
            return {ev.prefix}
        return set(self.prefixes) if ev.kind in (EventKind.DEVICE_UNREACHABLE, EventKind.DEVICE_BACK,
                                                 EventKind.LINK_DOWN, EventKind.LINK_UP) else set()

    def owner(self, gateway: str | None) -> str | None:
        return self.owners.get(gateway) if gateway else None

    def _states(self, name: str) -> list[DeviceState]:
        return [s for s in (self.before.devices.get(name), self.after.devices.get(name)) if s is not None]

    def anycast_neighbours(self, name: str) -> set[str]:
        out: set[str] = set(self.adjacency.get(name, ()))
        for st in self._states(name):
            for r in self.anycast_routes(st):
                out |= {o for nh in r.nexthops if (o := self.owner(nh.gateway)) is not None and o != name}
        for other, st in self.before.devices.items():
            if other == name:
                continue
            for r in self.anycast_routes(st):
                if any(self.owner(nh.gateway) == name for nh in r.nexthops):
                    out.add(other)
                    break
        return out

    def link_peer(self, name: str, ifname: str) -> str | None:
        """The device at the other end of ``name``'s ``ifname``: by a shared subnet, else by the anycast next
        hops leaving through it, else as last found (a failed device shows no interfaces)."""
        peer = self._link_peer(name, ifname)
        if peer is not None:
            if len(self.peers) > 65536:
                self.peers.clear()
            self.peers[(name, ifname)] = peer
            return peer
        return self.peers.get((name, ifname))

    def _link_peer(self, name: str, ifname: str) -> str | None:
        nets = []  # (own address, version, network, mask) as integers: every other device's addresses are read
        for st in self._states(name):
            itf = st.interface(ifname)
            if itf is None:
                continue
            for a in itf.addresses:
                if (a.family == 4 and a.prefixlen < 32) or (a.family == 6 and a.prefixlen < 128 and
                                                            not a.local.startswith("fe80")):
                    try:
                        net = ipaddress.ip_network(f"{a.local}/{a.prefixlen}", strict=False)
                    except ValueError:
                        continue
                    nets.append((a.local, net.version, int(net.network_address), int(net.netmask)))
        if nets:
            for other in sorted(set(self.after.devices) | set(self.before.devices)):
                if other == name:
                    continue
                for itf in self._interfaces(other):
                    for a in itf.addresses:
                        for local, version, network, mask in nets:
                            if a.local != local and a.family == version and _in_net(a.local, version, network, mask):
                                return other
        for st in self._states(name):
            for r in self.anycast_routes(st):
                for nh in r.nexthops:
                    if nh.dev == ifname and (o := self.owner(nh.gateway)) is not None:
                        return o
        for local, version, network, mask in nets:  # a peer that shows no interfaces now (failed): as last seen
            for addr, dev in self.owners.items():
                if dev != name and addr != local and (":" in addr) == (version == 6) and \
                        _in_net(addr, version, network, mask):
                    return dev
        return None

    def _interfaces(self, name: str) -> list:
        return [i for st in self._states(name) for i in st.interfaces]

    def isolated(self, name: str) -> bool:
        """Every link of ``name`` that carries an address (loopback aside) is down in the newest state."""
        st = self.after.devices.get(name)
        if st is None:
            return False
        links = [i for i in st.interfaces if i.addresses and i.name != "lo" and i.link_type != "loopback"]
        return bool(links) and not any(_link_up(i) for i in links)

    def group_members(self, name: str, gid: int, spec: str | None) -> set[str]:
        """Owners of the members named in a GROUP_CHANGED ``before``/``after`` text (``1/2,3``)."""
        ids = set()
        for part in (spec or "").split("/"):
            head = part.split(",")[0].strip()
            if head.isdigit():
                ids.add(int(head))
        out = set()
        for st in self._states(name):
            for obj in st.nexthops.objects:
                if obj.id in ids and (o := self.owner(obj.gateway)) is not None:
                    out.add(o)
        return out

    def anycast_group(self, name: str, gid: int) -> bool:
        return any(r.nhid == gid for st in self._states(name) for r in self.anycast_routes(st))

    def classify(self, ev: Event) -> _Classified | None:
        """The event's phase, elements and key (None: not about the anycast prefixes).  Every change one
        poll of a device found shares ``device@time``; a device's change of its own route to P names it
        as a cause (``src``) for the upstream devices that drop it."""
        c = self._classify(ev)
        if c is None:
            return None
        src = frozenset()
        if ev.prefix is not None and ev.prefix in self.prefixes and ev.kind in (
                EventKind.NEXTHOP_REMOVED, EventKind.NEXTHOP_ADDED, EventKind.WEIGHT_CHANGED,
                EventKind.NEXTHOP_FLAGS_CHANGED):
            src = frozenset({f"route:{ev.device}:{ev.prefix}"})
        elif ev.kind is EventKind.GROUP_CHANGED:
            src = frozenset(f"route:{ev.device}:{p}" for p in self.prefixes)
        return replace(c, near=c.near | {f"{ev.device}@{ev.time_ms}"}, src=src)

    def _classify(self, ev: Event) -> _Classified | None:
        k, d = ev.kind, ev.device
        if k in (EventKind.DEVICE_UNREACHABLE, EventKind.DEVICE_BACK):
            els = {f"dev:{d}"} | {_link(d, n) for n in self.anycast_neighbours(d)}
            phase = Phase.ONSET if k is EventKind.DEVICE_UNREACHABLE else Phase.RESTORE
            return _Classified(phase, frozenset(els), ("dev", d))
        if k in (EventKind.LINK_DOWN, EventKind.LINK_UP):
            peer = self.link_peer(d, ev.subject)
            els = {_link(d, peer) if peer else f"if:{d}:{ev.subject}"}
            # a device whose every link is down has failed, whatever its management plane says: its links'
            # events, seen from either end, are one incident with it
            els |= {f"dev:{x}" for x in (d, peer) if x is not None and k is EventKind.LINK_DOWN
                    and self.isolated(x)}
            phase = Phase.ONSET if k is EventKind.LINK_DOWN else Phase.RESTORE
            return _Classified(phase, frozenset(els), ("if", d, ev.subject))
        if ev.prefix is None or ev.prefix not in self.prefixes:
            if k in (EventKind.GROUP_CHANGED, EventKind.BUCKETS_CHANGED):
                return self._group(ev)
            return None
        p = ev.prefix
        if k in (EventKind.NEXTHOP_REMOVED, EventKind.NEXTHOP_ADDED, EventKind.WEIGHT_CHANGED,
                 EventKind.NEXTHOP_FLAGS_CHANGED):
            nh = ev.nexthop
            gw, dev = (nh.gateway, nh.dev) if nh is not None else (None, None)
            n = self.owner(gw)
            els = {_link(d, n), f"route:{n}:{p}"} if n else {f"nh:{d}:{gw or dev}"}
            key = ("nh", d, p, gw, dev)
            if k is EventKind.NEXTHOP_REMOVED:
                return _Classified(Phase.ONSET, frozenset(els), key)
            if k is EventKind.NEXTHOP_ADDED:
                return _Classified(Phase.RESTORE, frozenset(els), key)
            if k is EventKind.NEXTHOP_FLAGS_CHANGED:
                was = set((ev.before or "").split()) & _UNUSABLE
                now = set((ev.after or "").split()) & _UNUSABLE
                if now and not was:
                    return _Classified(Phase.ONSET, frozenset(els), ("flag",) + key)
                if was and not now:
                    return _Classified(Phase.RESTORE, frozenset(els), ("flag",) + key)
            return _Classified(Phase.CHANGE, frozenset(els), None)
        if k in (EventKind.ROUTE_WITHDRAWN, EventKind.ROUTE_ANNOUNCED):
            side = self.before if k is EventKind.ROUTE_WITHDRAWN else self.after
            els = {f"route:{d}:{p}"}
            for r in self.anycast_routes(side.devices.get(d)):
                if r.dst == p:
                    els |= {_link(d, n) for nh in r.nexthops if (n := self.owner(nh.gateway)) is not None}
            phase = Phase.ONSET if k is EventKind.ROUTE_WITHDRAWN else Phase.RESTORE
            return _Classified(phase, frozenset(els), ("route", d, p))
        return None

    def _group(self, ev: Event) -> _Classified | None:
        d = ev.device
        try:
            gid = int(ev.subject.split()[-1])
        except (ValueError, IndexError):
            return None
        if not self.anycast_group(d, gid):
            return None
        if ev.kind is EventKind.BUCKETS_CHANGED:  # joins its group change of the same poll (see _place)
            return _Classified(Phase.CHANGE, frozenset({f"buckets:{d}:{gid}"}), None)
        gone = self.group_members(d, gid, ev.before) - self.group_members(d, gid, ev.after)
        new = self.group_members(d, gid, ev.after) - self.group_members(d, gid, ev.before)
        els = {_link(d, n) for n in gone | new} | {f"route:{n}:{p}" for n in gone | new for p in self.prefixes}
        if not els:
            els = {f"group:{d}:{gid}"}
        if gone and not new:
            return _Classified(Phase.ONSET, frozenset(els), ("group", d, gid, tuple(sorted(gone))))
        if new and not gone:
            return _Classified(Phase.RESTORE, frozenset(els), ("group", d, gid, tuple(sorted(new))))
        return _Classified(Phase.CHANGE, frozenset(els), None)


def _link_phrases(links: dict[str, tuple[Event, str | None]]) -> list[tuple[float, str]]:
    """Link events as phrases: both ends of one link together, else grouped by the device at the far end."""
    out: list[tuple[float, str]] = []
    done: set[str] = set()
    by_peer: dict[tuple[str, bool, str], set[str]] = {}
    for key, (ev, peer) in links.items():
        if key in done:
            continue
        down = ev.kind is EventKind.LINK_DOWN
        why = f" ({ev.after})" if down and ev.after else ""
        word = "down" if down else "up"
        other = next((k for k, (e2, p2) in links.items() if k != key and e2.device == peer and p2 == ev.device
                      and e2.kind is ev.kind), None) if peer else None
        if other is not None:
            done |= {key, other}
            out.append((-1, f"link {' – '.join(sorted((key, other)))} {word}{why}"))
        elif peer is not None:
            done.add(key)
            by_peer.setdefault((peer, down, why), set()).add(ev.device)
        else:
            done.add(key)
            out.append((-1, f"{key} {word}{why}"))
    for (peer, down, why), devs in by_peer.items():
        out.append((-1, f"{_names(devs)} {'lost' if down else 'regained'} link to {peer}{why}"))
    return out


def _group_id(ev: Event) -> int:
    try:
        return int(ev.subject.split()[-1])
    except (ValueError, IndexError):
        return -1


def _link(a: str, b: str | None) -> str:
    x, y = sorted((a, b or "?"))
    return f"link:{x}|{y}"


# --------------------------------------------------------------------------- cause line


_ROLE_DEPTH = {Role.SERVER: 0, Role.LEAF: 1, Role.SPINE: 2, Role.BORDER: 3, Role.CLIENT: 3, Role.OTHER: 4}


def _names(names: Iterable[str]) -> str:
    return ", ".join(sorted(set(names)))


def _neighbour(ev: Event) -> str:
    """The neighbour a next-hop event names, as the event detail spells the next hop."""
    nh = ev.nexthop
    if nh is None:
        return ev.subject
    return nh.gateway or nh.dev or "?"


def cause_line(events: Iterable[Event], roles: dict[str, Role] | None = None,
               owners: dict[str, str] | None = None, peers: dict[str, str] | None = None) -> str:
    """One line naming what happened, deepest cause first.

    ``leaf03 unreachable (connection refused); spine01, spine02 lost next hop leaf03``.  Next hops are
    named by the neighbour holding the gateway when ``owners`` (address → device) knows it, else
    by the gateway.
    """
    roles = roles or {}
    owners = owners or {}
    peers = peers or {}
    parts: list[tuple[float, str]] = []
    links: dict[str, tuple[Event, str | None]] = {}
    lost: dict[str, set[str]] = {}
    gained: dict[str, set[str]] = {}
    reweighted: dict[str, set[str]] = {}
    withdrew: dict[str, set[str]] = {}
    announced: dict[str, set[str]] = {}
    buckets: list[str] = []
    for ev in events:
        k = ev.kind
        if k is EventKind.DEVICE_UNREACHABLE:
            why = ev.detail.split("unreachable:", 1)[-1].strip() if "unreachable:" in ev.detail else ""
            why = why.split(": ", 1)[-1] if why.startswith(ev.device + ":") else why
            parts.append((-2, f"{ev.device} unreachable" + (f" ({why})" if why else "")))
        elif k is EventKind.DEVICE_BACK:
            parts.append((-2, f"{ev.device} reachable again"))
        elif k in (EventKind.LINK_DOWN, EventKind.LINK_UP):
            links[f"{ev.device} {ev.subject}"] = (ev, peers.get(f"{ev.device} {ev.subject}"))
        elif k in (EventKind.NEXTHOP_REMOVED, EventKind.NEXTHOP_ADDED, EventKind.WEIGHT_CHANGED,
                   EventKind.NEXTHOP_FLAGS_CHANGED):
            n = _neighbour(ev)
            n = owners.get(n, n)
            bucket = {EventKind.NEXTHOP_REMOVED: lost, EventKind.NEXTHOP_ADDED: gained}.get(k, reweighted)
            if k is EventKind.NEXTHOP_FLAGS_CHANGED:
                bucket = lost if set((ev.after or "").split()) & _UNUSABLE else gained
            bucket.setdefault(n, set()).add(ev.device)
        elif k is EventKind.ROUTE_WITHDRAWN:
            withdrew.setdefault(ev.prefix or ev.subject, set()).add(ev.device)
        elif k is EventKind.ROUTE_ANNOUNCED:
            announced.setdefault(ev.prefix or ev.subject, set()).add(ev.device)
        elif k in (EventKind.GROUP_CHANGED, EventKind.BUCKETS_CHANGED):
            buckets.append(f"{ev.device} {ev.subject}")

    def depth(names: set[str]) -> int:
        return min(_ROLE_DEPTH.get(roles.get(n, Role.OTHER), 4) for n in names)

    parts += _link_phrases(links)

    for p, devs in withdrew.items():
        parts.append((depth(devs), f"{_names(devs)} withdrew {p}"))
    for p, devs in announced.items():
        parts.append((depth(devs), f"{_names(devs)} announced {p}"))
    for n, devs in lost.items():
        parts.append((depth(devs), f"{_names(devs)} lost next hop {n}"))
    for n, devs in gained.items():
        parts.append((depth(devs), f"{_names(devs)} gained next hop {n}"))
    for n, devs in reweighted.items():
        parts.append((depth(devs) + 0.5, f"{_names(devs)} re-weighted next hop {n}"))
    if buckets:
        parts.append((9, "buckets re-assigned on " + ", ".join(sorted(set(buckets)))))
    seen: list[str] = []
    for _, text in sorted(parts):  # by depth, then text: the same line whatever order the polls came in
        if text not in seen:
            seen.append(text)
    return "; ".join(seen) if seen else "no anycast change"
