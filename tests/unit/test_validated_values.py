"""Issue 16 item 3, validated values: numbers the kernel cannot hold are refused when parsed (a ParseError
naming the line and the value), and the engine refuses them with a typed error when a DeviceState is built
by other means — never a ZeroDivisionError, OverflowError or an answer no device gives."""

from __future__ import annotations

import json

import numpy as np
import pytest

from anycast_tui.cli import main
from anycast_tui.model.flows import flows_to_array
from anycast_tui.model.impact import compare_mappings
from anycast_tui.model.whatif import WhatIf, WhatIfKind
from anycast_tui.model.mapping import WeightError, hash_threshold_bounds, hash_threshold_one
from anycast_tui.model.placement import PlacementError, compile_device, place
from anycast_tui.model.resilient import ResilientGroup
from anycast_tui.model.types import (Bucket, Device, DeviceState, FabricSnapshot, Flow, GroupMember, HashSettings,
                                     Nexthop, NexthopGroup, NexthopObject, NexthopTable, Route)
from anycast_tui.parse.errors import ParseError
from anycast_tui.parse.frr import parse_frr_route, parse_frr_route_json
from anycast_tui.parse.nexthop import (parse_ip_nexthop, parse_ip_nexthop_bucket, parse_ip_nexthop_bucket_json,
                                       parse_ip_nexthop_json)
from anycast_tui.parse.route import parse_ip_route, parse_ip_route_json

HUGE = "9" * 5000  # past Python's 4300-digit int() limit


def route_text(weight: str) -> str:
    return (f"192.0.2.54 proto bgp\n\tnexthop via 198.19.0.2 dev nh0 weight {weight}\n"
            "\tnexthop via 198.19.1.2 dev nh1 weight 3\n")


def route_json(weight: object) -> str:
    return json.dumps([{"dst": "192.0.2.54", "flags": [], "nexthops": [
        {"gateway": "198.19.0.2", "dev": "nh0", "weight": 1, "flags": []},
        {"gateway": "198.19.1.2", "dev": "nh1", "weight": weight, "flags": []}]}])


# --------------------------------------------------------------------------- routes: weight 1..256, metric u32


@pytest.mark.parametrize("weight", ["0", "-1", "257", "100000000000000000000", HUGE, "0x101"])
def test_route_text_weight_outside_1_256_names_the_line_and_the_value(weight):
    with pytest.raises(ParseError) as ei:
        parse_ip_route(route_text(weight))
    assert ei.value.line == 2
    assert "weight" in ei.value.reason and (weight[:10] in ei.value.reason or "257" in ei.value.reason)  # 0x101
    assert "1..256" in ei.value.reason
    assert len(str(ei.value)) < 200  # a 5,000-digit value is cut, the message stays one short line


@pytest.mark.parametrize("weight", ["1", "256", "0x10"])
def test_route_text_weight_inside_the_range_parses(weight):
    r = parse_ip_route(route_text(weight))[0]
    assert r.nexthops[0].weight == int(weight, 0)


@pytest.mark.parametrize("weight", [0, -1, 257, 10**20, True, 1.5, "x"])
def test_route_json_weight_outside_1_256(weight):
    with pytest.raises(ParseError) as ei:
        parse_ip_route_json(route_json(weight))
    assert "route 0" in str(ei.value) and "weight" in ei.value.reason


def test_route_json_weight_true_after_weight_1_is_not_served_from_the_cache():
    # the next-hop cache keyed on the weight's value: true == 1 hashed alike and slipped through
    doc = json.loads(route_json(1)) + json.loads(route_json(True))
    doc[1]["dst"] = "192.0.2.55"
    with pytest.raises(ParseError, match="weight"):
        parse_ip_route_json(json.dumps(doc))


@pytest.mark.parametrize("text", ["192.0.2.54 via 198.19.0.2 dev nh0 metric 4294967296\n",
                                  "192.0.2.54 via 198.19.0.2 dev nh0 metric -1\n",
                                  f"192.0.2.54 via 198.19.0.2 dev nh0 metric {HUGE}\n",
                                  "192.0.2.54 nhid 0\n"])
def test_route_text_metric_and_nhid_are_u32(text):
    with pytest.raises(ParseError) as ei:
        parse_ip_route(text)
    assert ei.value.line == 1 and "out of range" in ei.value.reason or "bad" in ei.value.reason


@pytest.mark.parametrize("field", [{"metric": 2**32}, {"metric": -1}, {"nhid": 0}, {"nhid": 2**40}])
def test_route_json_metric_and_nhid_are_u32(field):
    with pytest.raises(ParseError, match="out of range"):
        parse_ip_route_json(json.dumps([{"dst": "192.0.2.54", "dev": "nh0", **field}]))


def test_route_metric_u32_max_parses():
    assert parse_ip_route("192.0.2.54 dev nh0 metric 4294967295\n")[0].metric == 2**32 - 1
    assert parse_ip_route_json('[{"dst":"192.0.2.54","dev":"nh0","metric":4294967295}]')[0].metric == 2**32 - 1


# --------------------------------------------------------------------------- nexthop groups


@pytest.mark.parametrize("spec", ["1,0/2", "1/2,65537", "1,-1/2", f"1,{HUGE}/2", "0/2"])
def test_nexthop_group_text_member_and_weight(spec):
    text = f"id 1 via 198.19.0.2 dev nh0 scope link\nid 2 via 198.19.1.2 dev nh1 scope link\nid 10 group {spec}\n"
    with pytest.raises(ParseError) as ei:
        parse_ip_nexthop(text)
    assert ei.value.line == 3 and ("group weight" in ei.value.reason or "group member" in ei.value.reason)


def test_nexthop_group_weight_up_to_65536_parses():
    t = parse_ip_nexthop("id 10 group 1,65536/2,256\n")
    assert [m.weight for m in t.groups[0].members] == [65536, 256]


@pytest.mark.parametrize("args", ["buckets 0", "buckets 65536", f"buckets {HUGE}", "idle_timer -1",
                                  "idle_timer 1e999", "idle_timer nan", "unbalanced_timer 42949673",
                                  "unbalanced_time -5"])
def test_resilient_text_arguments(args):
    with pytest.raises(ParseError) as ei:
        parse_ip_nexthop(f"id 10 group 1/2 type resilient {args}\n")
    assert ei.value.line == 1 and args.split()[0] in ei.value.reason


def test_resilient_text_arguments_in_range_parse():
    g = parse_ip_nexthop("id 10 group 1/2 type resilient buckets 65535 idle_timer 42949672 unbalanced_timer 0 "
                         "unbalanced_time 7\n").groups[0]
    assert (g.buckets, g.idle_timer, g.unbalanced_timer, g.unbalanced_time) == (65535, 42949672, 0, 7)


@pytest.mark.parametrize("obj", [
    {"id": 10, "group": [{"id": 1, "weight": 0}, {"id": 2}]},
    {"id": 10, "group": [{"id": 1, "weight": 10**20}, {"id": 2}]},
    {"id": 10, "group": [{"id": 1}, {"id": 2}], "type": "resilient", "resilient_args": {"buckets": 0}},
    {"id": 10, "group": [{"id": 1}, {"id": 2}], "type": "resilient", "resilient_args": {"idle_timer": 10**400}},
    {"id": 0, "gateway": "198.19.0.2", "dev": "nh0"},
])
def test_nexthop_json_out_of_range(obj):
    with pytest.raises(ParseError, match="nexthop 0: .*(out of range|bad)"):
        parse_ip_nexthop_json(json.dumps([obj]))


@pytest.mark.parametrize("text", ['[{"id":10,"bucket":{"index":0,"idle_time":1e999,"nhid":3},"flags":[]}]',
                                  '[{"id":10,"bucket":{"index":0,"idle_time":1' + "0" * 400 + ',"nhid":3}}]',
                                  '[{"id":10,"bucket":{"index":0,"idle_time":-1,"nhid":3}}]',
                                  '[{"id":10,"bucket":{"index":65535,"idle_time":0,"nhid":3}}]'])
def test_bucket_json_idle_time_and_index(text):
    with pytest.raises(ParseError, match="bucket 0: (idle_time|index)"):
        parse_ip_nexthop_bucket_json(text)


@pytest.mark.parametrize("text", ["id 10 index 0 idle_time inf nhid 3\n", "id 10 index 0 idle_time nan nhid 3\n",
                                  f"id 10 index {HUGE} idle_time 0 nhid 3\n", "id 10 index 0 idle_time 0 nhid 0\n"])
def test_bucket_text_idle_time_index_nhid(text):
    with pytest.raises(ParseError) as ei:
        parse_ip_nexthop_bucket(text)
    assert ei.value.line == 1


# --------------------------------------------------------------------------- FRR


@pytest.mark.parametrize("text", ["B>* 192.0.2.0/24 [20/0] via 198.18.1.2, swp1, weight 0, 00:01:02\n",
                                  "B>* 192.0.2.0/24 [20/0] via 198.18.1.2, swp1, weight 65536, 00:01:02\n",
                                  "B>* 192.0.2.0/24 [20/9999999999] via 198.18.1.2, swp1, weight 1, 00:01:02\n"])
def test_frr_text_weight_and_metric(text):
    with pytest.raises(ParseError) as ei:
        parse_frr_route(text)
    assert ei.value.line == 1 and "out of range" in ei.value.reason


def test_frr_json_weight_0_and_metric():
    for nh, entry in (({"fib": True, "ip": "198.18.1.2", "weight": 0}, {}),
                      ({"fib": True, "ip": "198.18.1.2"}, {"metric": 2**32})):
        doc = {"192.0.2.0/24": [{"installed": True, "nexthops": [nh], **entry}]}
        with pytest.raises(ParseError, match="out of range"):
            parse_frr_route_json(json.dumps(doc))


# --------------------------------------------------------------------------- the engine, fed by other means


def hand_built(weights, *, group: bool = False, buckets: int | None = None) -> DeviceState:
    hs = HashSettings(policy=1, seed=7)
    if not group:
        nhs = tuple(Nexthop(f"198.19.{i}.2", f"nh{i}", w) for i, w in enumerate(weights))
        return DeviceState(Device("r1"), routes=(Route("192.0.2.54/32", 4, nexthops=nhs),), hash=hs)
    objs = tuple(NexthopObject(i + 1, f"198.19.{i}.2", f"nh{i}") for i in range(len(weights)))
    g = NexthopGroup(10, tuple(GroupMember(i + 1, w) for i, w in enumerate(weights)),
                     type="resilient" if buckets else "mpath", buckets=buckets)
    return DeviceState(Device("r1"), routes=(Route("192.0.2.54/32", 4, nhid=10),),
                       nexthops=NexthopTable(objs, (g,)), hash=hs)


FLOWS = flows_to_array([Flow(17, "203.0.113.10", 1000 + i, "192.0.2.54", 53) for i in range(8)])[0]


@pytest.mark.parametrize("weights", [[0, 0], [0, 1], [-1, 3], [10**20, 1], [1.5, 1], [True, 1], [65537, 1]])
def test_hash_threshold_refuses_weights_no_kernel_has(weights):
    # was ZeroDivisionError ([0, 0]), OverflowError (10**20), or an answer ([-1, 3])
    with pytest.raises(WeightError, match=r"1\.\.65536"):
        hash_threshold_bounds(weights)
    with pytest.raises(WeightError):
        hash_threshold_one(5, weights)


def test_hash_threshold_takes_numpy_weights_and_all_unusable():
    assert list(hash_threshold_bounds(np.array([1, 3]))) == [2**29 - 1, 2**31 - 1]
    assert list(hash_threshold_bounds([1, 65536], [False, False])) == [-1, -1]


@pytest.mark.parametrize("kw", [{"weights": [0, 1]}, {"weights": [1, 10**20]}, {"num_buckets": 0},
                                {"num_buckets": 10**9}, {"num_buckets": 65536}])
def test_resilient_group_refuses_out_of_range_weights_and_buckets_before_allocating(kw):
    with pytest.raises(WeightError):
        ResilientGroup.create([1, 2], **kw)


def test_resilient_from_group_checks_indexes():
    members = (GroupMember(1), GroupMember(2))
    table = tuple(Bucket(10, i % 3, 1 + i % 2) for i in range(4))  # index 0 twice, 3 missing
    with pytest.raises(ValueError, match="indexes"):
        ResilientGroup.from_group(NexthopGroup(10, members, type="resilient", buckets=4, bucket_table=table))


@pytest.mark.parametrize("state", [hand_built([0, 0]), hand_built([-1, 3]), hand_built([10**20, 1]),
                                   hand_built([0, 1], group=True), hand_built([0, 1], group=True, buckets=8),
                                   hand_built([1, 1], group=True, buckets=10**9)],
                         ids=["route-0", "route-neg", "route-huge", "mpath-0", "resilient-0", "buckets-huge"])
def test_engine_gives_a_placement_error_for_a_hand_built_state(state):
    with pytest.raises(PlacementError, match="(route 192.0.2.54/32|nexthop group 10): .*(weight|buckets)"):
        compile_device(state)
    with pytest.raises(PlacementError):
        place(state, FLOWS)
    snap = FabricSnapshot(0, {"r1": state})
    with pytest.raises(PlacementError):
        compare_mappings(snap, WhatIf(WhatIfKind.FAIL_NEXTHOP, "r1", "198.19.1.2"), FLOWS, "r1")


# --------------------------------------------------------------------------- calc / whatif: one line, exit 2


@pytest.mark.parametrize("weight", ["0", "100000000000000000000", "-1"])
@pytest.mark.parametrize("command", ["calc", "whatif"])
def test_calc_and_whatif_say_one_line(tmp_path, capsys, command, weight):
    routes = tmp_path / "routes.txt"
    routes.write_text(route_text(weight) + "198.19.0.0/24 dev nh0 scope link\n198.19.1.0/24 dev nh1 scope link\n")
    code = main([command, "--routes", str(routes), "--hash-policy", "1", "--hash-seed", "1", "-p", "udp",
                 "-s", "203.0.113.10", "--sport", "1", "-d", "192.0.2.54", "--dport", "53"])
    out, err = capsys.readouterr()
    assert code == 2 and out == ""
    assert err.count("\n") == 1 and f"routes.txt: ip-route: line 2: weight {weight[:20]}" in err
