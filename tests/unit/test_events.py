"""Snapshot diff → typed events."""

from dataclasses import replace

from anycast_tui.model.events import diff
from anycast_tui.model.timeline import Timeline
from anycast_tui.model.types import (
    Bucket, Device, DeviceState, EventKind, FabricSnapshot, GroupMember, Health, HealthStatus, Interface,
    Nexthop, NexthopGroup, NexthopTable, Role, Route,
)

OK = Health(HealthStatus.OK, since_ms=0, last_ok_ms=1000)
NH = [Nexthop(gateway=f"198.19.0.{2 * i + 1}", dev=f"swp{i + 1}") for i in range(4)]
ANY = "192.0.2.53/32"


def spine(nhs, *, t=1000, health=OK, links=None, groups=()):
    route = Route(dst=ANY, family=4, protocol="bgp", metric=20, nexthops=tuple(nhs))
    links = links if links is not None else tuple(
        Interface(name=f"swp{i + 1}", flags=("BROADCAST", "MULTICAST", "UP", "LOWER_UP"), operstate="UP") for i in range(4))
    return DeviceState(Device("spine01", Role.SPINE), routes=(route,), interfaces=links,
                       nexthops=NexthopTable(groups=groups), collected_at_ms=t, health=health)


def snap(*states, t=1000):
    return FabricSnapshot(taken_at_ms=t, devices={s.device.name: s for s in states})


def kinds(events):
    return [e.kind for e in events]


def test_no_change_no_event():
    assert diff(snap(spine(NH)), snap(spine(NH, t=2000))) == []


def test_first_snapshot_is_not_an_event():
    assert diff(None, snap(spine(NH))) == []


def test_nexthop_removed_and_added():
    ev = diff(snap(spine(NH)), snap(spine(NH[:2] + NH[3:], t=2000)))
    assert kinds(ev) == [EventKind.NEXTHOP_REMOVED]
    assert ev[0].nexthop == NH[2] and ev[0].prefix == ANY and ev[0].time_ms == 2000
    assert "4→3-way" in ev[0].detail
    back = diff(snap(spine(NH[:2] + NH[3:])), snap(spine(NH, t=3000)))
    assert kinds(back) == [EventKind.NEXTHOP_ADDED] and back[0].nexthop == NH[2]


def test_weight_and_flags():
    changed = [replace(NH[0], weight=3), replace(NH[1], flags=("linkdown",))] + NH[2:]
    ev = diff(snap(spine(NH)), snap(spine(changed, t=2000)))
    assert sorted(kinds(ev)) == sorted([EventKind.WEIGHT_CHANGED, EventKind.NEXTHOP_FLAGS_CHANGED])
    w = next(e for e in ev if e.kind is EventKind.WEIGHT_CHANGED)
    assert (w.before, w.after) == ("1", "3")


def test_route_withdrawn_and_announced():
    empty = replace(spine(NH, t=2000), routes=())
    assert kinds(diff(snap(spine(NH)), snap(empty))) == [EventKind.ROUTE_WITHDRAWN]
    assert kinds(diff(snap(empty), snap(spine(NH, t=3000)))) == [EventKind.ROUTE_ANNOUNCED]


def test_local_table_and_link_local_are_not_events():
    noisy = replace(spine(NH, t=2000), routes=spine(NH).routes + (
        Route(dst="198.18.0.1/32", family=4, type="local", table="local"),
        Route(dst="fe80::/64", family=6, nexthops=(Nexthop(dev="swp1"),))))
    assert diff(snap(spine(NH)), snap(noisy)) == []


def test_link_down_and_up():
    links = spine(NH).interfaces
    down = (replace(links[0], flags=("BROADCAST", "MULTICAST", "UP", "NO-CARRIER"), operstate="DOWN"),) + links[1:]
    ev = diff(snap(spine(NH)), snap(spine(NH, t=2000, links=down)))
    assert kinds(ev) == [EventKind.LINK_DOWN] and ev[0].subject == "swp1" and ev[0].after == "no carrier"
    assert kinds(diff(snap(spine(NH, links=down)), snap(spine(NH, t=3000)))) == [EventKind.LINK_UP]


def test_device_unreachable_then_back_and_stale_data_is_silent():
    stale = Health(HealthStatus.STALE, since_ms=1500, error="connection refused", last_ok_ms=1000)
    # The stale device keeps its last good routes (it lost nothing we know of).
    ev = diff(snap(spine(NH)), snap(spine(NH[:1], t=1000, health=stale)))
    assert kinds(ev) == [EventKind.DEVICE_UNREACHABLE]
    assert ev[0].time_ms == 1500 and "connection refused" in ev[0].detail
    ev = diff(snap(spine(NH, health=stale)), snap(spine(NH, t=4000)))
    assert kinds(ev) == [EventKind.DEVICE_BACK]


def test_buckets_moved():
    members = (GroupMember(1), GroupMember(2))
    t1 = tuple(Bucket(10, i, 1 if i < 4 else 2) for i in range(8))
    t2 = tuple(Bucket(10, i, 1 if i < 3 else 2) for i in range(8))
    g1 = NexthopGroup(10, members, "resilient", buckets=8, bucket_table=t1)
    g2 = replace(g1, bucket_table=t2)
    ev = diff(snap(spine(NH, groups=(g1,))), snap(spine(NH, t=2000, groups=(g2,))))
    assert kinds(ev) == [EventKind.BUCKETS_CHANGED] and ev[0].after == "3"


def test_timeline_merges_device_updates_and_notifies():
    tl = Timeline(clock=lambda: 5.0)
    seen = []
    tl.subscribe(lambda change: seen.append(change))
    tl.update(spine(NH))
    tl.update(spine(NH[:3], t=2000))
    assert kinds(tl.events) == [EventKind.NEXTHOP_REMOVED]
    assert len(seen) == 2 and seen[1].events == tuple(tl.events)
    assert seen[1].before.devices["spine01"].routes[0].nexthops == tuple(NH)


def test_timeline_bounds_events_and_counts_drops():
    tl = Timeline(max_events=1)
    tl.update(spine(NH))
    tl.update(spine(NH[:3], t=2000))
    tl.update(spine(NH[:2], t=3000))
    assert len(tl.events) == 1 and tl.dropped_events == 1


def test_nexthop_widths_read_old_to_new_one_step_at_a_time():
    # 3 → 4: the addition widens the group
    (add,) = diff(snap(spine(NH[:3])), snap(spine(NH, t=2000)))
    assert add.kind is EventKind.NEXTHOP_ADDED and add.detail.endswith("added (3→4-way)")
    assert (add.before, add.after) == ("3", "4")
    # 2 → 1: the removal narrows it
    (rm,) = diff(snap(spine(NH[:2])), snap(spine(NH[:1], t=2000)))
    assert rm.kind is EventKind.NEXTHOP_REMOVED and rm.detail.endswith("removed (2→1-way)")
    # one of two replaced in one poll: never an addition that narrows the group
    ev = diff(snap(spine(NH[:2])), snap(spine([NH[0], NH[3]], t=2000)))
    assert [(e.kind, e.nexthop, e.before, e.after) for e in ev] == [
        (EventKind.NEXTHOP_REMOVED, NH[1], "2", "1"), (EventKind.NEXTHOP_ADDED, NH[3], "1", "2")]
    assert ev[0].detail.endswith("(2→1-way)") and ev[1].detail.endswith("(1→2-way)")
    # two added at once: 2→3, then 3→4
    ev = diff(snap(spine(NH[:2])), snap(spine(NH, t=2000)))
    assert [e.detail[-9:] for e in ev] == ["(2→3-way)", "(3→4-way)"]


def test_route_events_count_next_hops_in_singular_and_plural():
    one, none = spine(NH[:1]), replace(spine(NH, t=2000), routes=())
    (learned,) = diff(snap(none), snap(replace(one, collected_at_ms=3000)))
    assert learned.detail == f"spine01 learned {ANY} via 1 next hop" and learned.after == "1 next hop"
    (gone,) = diff(snap(one), snap(none))
    assert gone.before == "1 next hop" and gone.after == "none"
    (learned4,) = diff(snap(none), snap(spine(NH, t=3000)))
    assert learned4.detail.endswith("via 4 next hops") and learned4.after == "4 next hops"
    (gone4,) = diff(snap(spine(NH)), snap(none))
    assert gone4.before == "4 next hops"
