"""Kind detection, dispatch, JSON output of records, and DeviceState building."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from anycast_tui.collect.commands import LINUX_POLL, LINUX_POLL_TEXT
from anycast_tui.model.types import Device, Health, HealthStatus, NexthopTable
from anycast_tui.parse.detect import KINDS, detect_kind, parse_as, to_jsonable
from anycast_tui.parse.device import build_device_state
from anycast_tui.parse.errors import ParseError

FIX = Path(__file__).resolve().parent.parent / "fixtures" / "parse"

CAPTURES = {
    "kernel-route.txt": "ip-route", "kernel-route.json": "ip-route-json", "kernel-route-d.txt": "ip-route",
    "kernel-route-d.json": "ip-route-json", "kernel-route-o.txt": "ip-route", "kernel-nexthop.txt": "ip-nexthop",
    "kernel-nexthop.json": "ip-nexthop-json", "kernel-bucket.txt": "ip-nexthop-bucket",
    "kernel-bucket.json": "ip-nexthop-bucket-json", "kernel-link.txt": "ip-link", "kernel-link.json": "ip-link-json",
    "kernel-addr.txt": "ip-addr", "kernel-addr.json": "ip-addr-json", "kernel-link-sd.txt": "ip-link",
    "kernel-sysctl.txt": "sysctl-values",
}


def test_command_kinds_are_known():
    assert {c.kind for c in LINUX_POLL + LINUX_POLL_TEXT} <= set(KINDS)


@pytest.mark.parametrize("name, kind", sorted(CAPTURES.items()))
def test_detect_real_captures(name, kind):
    text = (FIX / name).read_text()
    assert detect_kind(text) == kind
    parse_as(text, kind)


@pytest.mark.parametrize("text", ["", "   \n", "hello world\n", "[]", '[{"foo": 1}]', "42 is the answer\n", '"x"'])
def test_detect_refuses_when_unsure(text):
    with pytest.raises(ParseError) as ei:
        detect_kind(text)
    assert ei.value.line == 0 and "use --as KIND" in ei.value.reason


def test_detect_broken_json_by_its_keys():
    assert detect_kind('[{"dst": "192.0.2.1", "flags": [}') == "ip-route-json"
    assert detect_kind('[{"ifname": "lo", "addr_info": [}') == "ip-addr-json"


def test_parse_as_unknown_kind():
    with pytest.raises(ParseError, match="unknown kind"):
        parse_as("", "ip-frob")


def test_to_jsonable_is_stable_and_json_serialisable():
    routes = parse_as((FIX / "kernel-route.txt").read_text(), "ip-route")
    data = to_jsonable(routes)
    assert list(data[0]) == ["dst", "family", "type", "table", "protocol", "scope", "metric", "prefsrc", "nhid",
                             "nexthops", "flags", "extra"]
    assert json.loads(json.dumps(data)) == data
    hs = to_jsonable(parse_as("1\n0\n0\n0\n", "sysctl-values"))
    assert hs["policy"] == 1 and hs["seed"] == 0
    nt = to_jsonable(parse_as((FIX / "kernel-nexthop.json").read_text(), "ip-nexthop-json"))
    assert set(nt) == {"objects", "groups"}


def test_to_jsonable_extra_pairs_keep_duplicates():
    r = parse_as("192.0.2.1 via 198.18.1.2 dev v1 mtu lock 1400 congctl lock cubic\n", "ip-route")
    assert to_jsonable(r)[0]["extra"] == [["locked", "mtu"], ["mtu", "1400"], ["locked", "congctl"], ["congctl", "cubic"]]


# --------------------------------------------------------------------------- device state


def outputs() -> dict[str, str]:
    routes = json.loads((FIX / "kernel-route.json").read_text())
    v4 = [r for r in routes if ":" not in r["dst"]]
    v6 = [r for r in routes if ":" in r["dst"]]
    return {
        "routes4": json.dumps(v4), "routes6": json.dumps(v6),
        "links": (FIX / "kernel-link.json").read_text(), "addrs": (FIX / "kernel-addr.json").read_text(),
        "nexthops": (FIX / "kernel-nexthop.json").read_text(), "buckets": (FIX / "kernel-bucket.json").read_text(),
        "sysctl": (FIX / "kernel-sysctl.txt").read_text(),
    }


def build(out: dict[str, str]):
    return build_device_state(Device("r1"), out, collected_at_ms=1000, health=Health(HealthStatus.OK))


def test_build_device_state_from_poll_outputs():
    st = build(outputs())
    assert st.device.name == "r1" and st.collected_at_ms == 1000 and st.health.status is HealthStatus.OK
    assert any(r.dst == "192.0.2.53/32" for r in st.routes) and any(r.family == 6 for r in st.routes)
    assert st.interface("v1").addresses[0].local == "198.18.1.1"
    g = st.group(11)
    assert g is not None and len(g.bucket_table) == 8
    assert st.hash.seed == 12345


def test_optional_outputs_may_be_missing_or_empty():
    out = outputs()
    del out["nexthops"], out["buckets"], out["sysctl"], out["addrs"]
    st = build(out)
    assert st.nexthops == NexthopTable() and st.hash.seed == 0
    assert st.interface("v1") is not None and st.interface("v1").addresses == ()
    out["nexthops"] = ""
    assert build(out).nexthops == NexthopTable()


def test_text_fallback_route_outputs():
    out = outputs()
    text = (FIX / "kernel-route.txt").read_text()
    out["routes4"] = "".join(ln for ln in text.splitlines(keepends=True) if ":" not in ln.split()[0] and not ln.startswith(("local ::", "multicast ff")))
    out["routes6"] = ""
    st = build(out)
    assert any(r.dst == "192.0.2.53/32" and r.multipath for r in st.routes)


@pytest.mark.parametrize("cid, bad, line", [("routes6", "[{]", 1), ("addrs", '[{"ifindex": 1}]', 0),
                                             ("buckets", '[{"id":99,"bucket":{"index":0,"nhid":1}}]', 0),
                                             ("sysctl", "x\n0\n0\n0\n", 1)])
def test_errors_name_the_command(cid, bad, line):
    out = outputs()
    out[cid] = bad
    with pytest.raises(ParseError) as ei:
        build(out)
    assert ei.value.command == cid and ei.value.line == line


def test_required_outputs():
    out = outputs()
    del out["routes4"]
    with pytest.raises(ParseError, match="routes4: output missing"):
        build(out)


def test_outputs_that_are_not_text():
    out = outputs()
    out["routes6"] = None  # type: ignore[assignment]
    with pytest.raises(ParseError, match="routes6: output missing"):
        build(out)
    out = outputs()
    out["addrs"] = b"[]"  # type: ignore[assignment]
    with pytest.raises(ParseError, match="addrs: output is not text"):
        build(out)
