"""SimFabric.handle: the fixed command lines answered in iproute2's formats, parsed by our parsers."""

from __future__ import annotations

import json
import shlex
from collections import Counter

import pytest

from anycast_tui.collect.commands import ALLOWED_LINES, LINKS, LINUX_POLL, LINUX_POLL_TEXT, route_get
from anycast_tui.lab import render
from anycast_tui.lab.sim import SimConfig, SimFabric
from anycast_tui.lab.simfabric import GROUP4_ID
from anycast_tui.model.hashing import linux_multipath_hash_one
from anycast_tui.model.types import Flow, NexthopTable
from anycast_tui.parse.detect import detect_kind, parse_as
from anycast_tui.parse.nexthop import parse_ip_nexthop, parse_ip_nexthop_bucket, parse_ip_nexthop_bucket_json
from anycast_tui.parse.nexthop import parse_ip_nexthop_json
from anycast_tui.parse.route import parse_ip_route, parse_ip_route_json
from anycast_tui.parse.sysctl import parse_hash_sysctls

KIND = {c.line: c.kind for c in (*LINUX_POLL, *LINUX_POLL_TEXT, LINKS)}
TEXT_VARIANTS = {
    "ip route show": "ip-route",
    "ip -6 route show": "ip-route",
    "ip route show table all": "ip-route",
    "ip nexthop show": "ip-nexthop",
    "ip nexthop bucket show": "ip-nexthop-bucket",
    "ip link show": "ip-link",
    "ip addr show": "ip-addr",
}


class Clock:
    def __init__(self) -> None:
        self.t = 50.0

    def __call__(self) -> float:
        return self.t


@pytest.fixture(scope="module")
def plain() -> SimFabric:
    return SimFabric()


@pytest.fixture(scope="module")
def resilient() -> SimFabric:
    sim = SimFabric(SimConfig(resilient=True), clock=Clock())
    sim.fail_device("leaf04")
    return sim


@pytest.mark.parametrize("line", sorted(ALLOWED_LINES) + sorted(TEXT_VARIANTS))
@pytest.mark.parametrize("device", ["spine01", "leaf02", "server03"])
@pytest.mark.parametrize("mode", ["plain", "resilient"])
def test_every_line_answers_and_parses(line, device, mode, request):
    sim = request.getfixturevalue(mode)
    res = sim.handle(device, line)
    assert res.exit_status == 0 and res.stderr == ""
    kind = KIND.get(line) or TEXT_VARIANTS[line]
    if kind.endswith("-json"):
        json.loads(res.stdout)
    records = parse_as(res.stdout, kind)
    has = bool(records.objects or records.groups) if isinstance(records, NexthopTable) else bool(records)
    if kind != "sysctl-values" and has:
        assert detect_kind(res.stdout) == kind
    # only resilient spines have nexthop objects; every other answer is non-empty
    assert has == ("nexthop" not in line or (mode == "resilient" and device == "spine01"))


def test_route_json_and_text_give_the_same_records(plain):
    for fam in (4, 6):
        js = plain.handle("spine01", f"ip -j -{fam} route show table all").stdout
        tx = plain.handle("spine01", f"ip -{fam} route show table all").stdout
        assert parse_ip_route_json(js, family=fam) == parse_ip_route(tx, family=fam)


def test_json_output_round_trips_through_parse_and_render(resilient):
    for line, parse, rend in [
        ("ip -j -4 route show table all", lambda t: parse_ip_route_json(t, family=4), render.render_routes_json),
        ("ip -j -6 route show table all", lambda t: parse_ip_route_json(t, family=6), render.render_routes_json),
        ("ip -4 route show table all", lambda t: parse_ip_route(t, family=4), render.render_routes_text),
        ("ip -j nexthop bucket show", parse_ip_nexthop_bucket_json, render.render_buckets_json),
        ("ip nexthop bucket show", parse_ip_nexthop_bucket, render.render_buckets_text),
    ]:
        out = resilient.handle("spine01", line).stdout
        assert rend(parse(out)) == out, line
    for line, parse, rend in [("ip -j nexthop show", parse_ip_nexthop_json, render.render_nexthops_json),
                              ("ip nexthop show", parse_ip_nexthop, render.render_nexthops_text)]:
        out = resilient.handle("spine01", line).stdout
        t = parse(out)
        assert rend(t.objects, t.groups) == out


def test_sysctl_values_are_the_device_hash_settings(plain):
    line = next(line for line in ALLOWED_LINES if line.startswith("sysctl"))
    for dev in ("spine01", "spine02", "leaf01"):
        hs = parse_hash_sysctls(plain.handle(dev, line).stdout)
        want = plain.hash_settings(dev)
        assert (hs.policy, hs.seed, hs.policy6, hs.fields) == (want.policy, want.seed, want.policy6, want.fields)
        assert hs.seed != 0


def test_exact_text_of_a_small_fabric():
    sim = SimFabric(SimConfig(spines=1, leaves=2))
    assert sim.handle("spine01", "ip route show").stdout == (
        "192.0.2.53 proto bgp metric 20 \n"
        "\tnexthop via 198.19.0.1 dev swp1 weight 1 \n"
        "\tnexthop via 198.19.0.3 dev swp2 weight 1 \n"
        "198.18.0.2 via 198.19.0.1 dev swp1 proto bgp metric 20 \n"
        "198.18.0.3 via 198.19.0.3 dev swp2 proto bgp metric 20 \n"
        "198.18.0.4 via 198.19.0.1 dev swp1 proto bgp metric 20 \n"
        "198.18.0.5 via 198.19.0.3 dev swp2 proto bgp metric 20 \n"
        "198.19.0.0/31 dev swp1 proto kernel scope link src 198.19.0.0 \n"
        "198.19.0.2/31 dev swp2 proto kernel scope link src 198.19.0.2 \n"
        "203.0.113.0/24 dev swp3 proto kernel scope link src 203.0.113.1 \n"
    )
    assert sim.handle("server01", "ip -j nexthop show").stdout == "[]\n"
    assert sim.handle("server01", "ip nexthop show").stdout == ""
    assert sim.handle("spine01", "ip -j -6 route show table all").stdout.startswith(
        '[{"dst":"2001:db8::1","dev":"lo","protocol":"kernel","metric":256,"flags":[],"pref":"medium"},')


def test_linkdown_and_no_carrier_after_failure():
    sim = SimFabric()
    sim.fail_device("leaf03")
    text = sim.handle("spine01", "ip route show").stdout
    assert "198.19.0.4/31 dev swp3 proto kernel scope link src 198.19.0.4 linkdown \n" in text
    links = json.loads(sim.handle("spine01", "ip -j link show").stdout)
    swp3 = [i for i in links if i["ifname"] == "swp3"][0]
    assert swp3["flags"] == ["NO-CARRIER", "BROADCAST", "MULTICAST", "UP"] and swp3["operstate"] == "DOWN"
    assert "4: swp3: <NO-CARRIER,BROADCAST,MULTICAST,UP> mtu 9216 qdisc pfifo_fast state DOWN mode DEFAULT" in \
        sim.handle("spine01", "ip link show").stdout
    # a failed device does not answer (the farm refuses its SSH; called anyway, it says so)
    assert sim.handle("leaf03", "ip -j link show").exit_status == 255


# --------------------------------------------------------------------------- route get


def _get(sim: SimFabric, dev: str, **kw) -> dict:
    cmd = route_get("192.0.2.53", **kw)
    res = sim.handle(dev, cmd.line)
    assert res.exit_status == 0, res.stderr
    (obj,) = json.loads(res.stdout)
    return obj


def test_route_get_follows_the_device_hash_and_hash_threshold(plain):
    hs = plain.hash_settings("spine01")
    route = [r for r in plain.routes("spine01", 4, table="main") if r.dst == "192.0.2.53/32"][0]
    used = Counter()
    for sport in range(40000, 40200):
        obj = _get(plain, "spine01", src="203.0.113.10", iif="swp5", proto="tcp", sport=sport, dport=53)
        h = linux_multipath_hash_one(Flow(6, "203.0.113.10", sport, "192.0.2.53", 53), policy=1, seed=hs.seed)
        i = next(i for i in range(4) if h <= ((i + 1) << 31) // 4 - 1)  # equal weights: quarter bounds
        assert obj["dev"] == route.nexthops[i].dev and obj["gateway"] == route.nexthops[i].gateway
        assert obj["iif"] == "swp5" and obj["from"] == "203.0.113.10"
        used[obj["dev"]] += 1
    assert set(used) == {"swp1", "swp2", "swp3", "swp4"}


def test_route_get_resilient_uses_the_bucket_table():
    sim = SimFabric(SimConfig(resilient=True), clock=Clock())
    sim.fail_device("leaf02")
    hs = sim.hash_settings("spine02")
    table = {b.index: b.nhid for b in parse_ip_nexthop_bucket_json(sim.handle("spine02", "ip -j nexthop bucket show")
                                                                   .stdout) if b.group_id == GROUP4_ID}
    objs = {o.id: o for o in sim.nexthops("spine02").objects}
    for sport in range(1000, 1100):
        obj = _get(sim, "spine02", src="203.0.113.99", iif="swp5", proto="udp", sport=sport, dport=53)
        h = linux_multipath_hash_one(Flow(17, "203.0.113.99", sport, "192.0.2.53", 53), policy=1, seed=hs.seed)
        assert obj["dev"] == objs[table[h % 32]].dev


def test_route_get_shapes():
    sim = SimFabric()
    out = sim.handle("spine01", "ip route get 192.0.2.53").stdout
    assert out.endswith(" uid 0 \n    cache \n") and " src 198.19.0." in out
    assert sim.handle("spine01", "ip -j route get 198.18.0.1").stdout == (
        '[{"type":"local","dst":"198.18.0.1","dev":"lo","prefsrc":"198.18.0.1","flags":[],"uid":0,'
        '"cache":["local"]}]\n')
    v6 = json.loads(sim.handle("spine01", "ip -j route get 2001:db8:53::53").stdout)[0]
    assert v6["from"] == "::" and v6["protocol"] == "bgp" and v6["pref"] == "medium" and "uid" not in v6
    srv = json.loads(sim.handle("server01", "ip -j route get 203.0.113.5").stdout)[0]
    assert srv["dev"] == "eth0"


@pytest.mark.parametrize("line,status,err", [
    ("ip route get 198.51.100.1", 2, "RTNETLINK answers: Network is unreachable\n"),
    ("ip route get 192.0.2.53 iif swp77", 1, 'Cannot find device "swp77"\n'),
    ("ip -6 route get 192.0.2.53", 1, 'Error: inet6 prefix is expected rather than "192.0.2.53".\n'),
])
def test_route_get_errors(plain, line, status, err):
    res = plain.handle("leaf01", line)
    assert (res.exit_status, res.stdout, res.stderr) == (status, "", err)


# --------------------------------------------------------------------------- refusals


@pytest.mark.parametrize("line", [
    "reboot",
    "ip route add 192.0.2.0/24 dev swp1",
    "ip link set swp1 down",
    "ip route show; rm -rf /",
    "ip route show && reboot",
    "ip -j link show | sh",
    "$(reboot)",
    "`id`",
    "ip route show table all > /etc/passwd",
    "sysctl -w net.ipv4.fib_multipath_hash_seed=1",
    "ip -j nexthop show id 1",
    "ip -j -5 route show table all",
])
def test_unknown_or_injected_commands_are_not_found(line):
    sim = SimFabric()
    before = (sim.generation, sim.handle("spine01", "ip -j -4 route show table all").stdout)
    res = sim.handle("spine01", line)
    assert res.exit_status == 127 and res.stdout == ""
    first = shlex.split(line)[0]
    name = line if first in ("ip", "sysctl") else first
    assert res.stderr == f"bash: line 1: {name}: command not found\n"
    assert (sim.generation, sim.handle("spine01", "ip -j -4 route show table all").stdout) == before


def test_unbalanced_quote_is_a_shell_error():
    res = SimFabric().handle("spine01", "ip route show 'oops")
    assert res.exit_status == 2 and res.stdout == ""


@pytest.mark.parametrize("what", ["link", "addr"])
def test_link_and_addr_text_and_json_agree_and_round_trip(what):
    from anycast_tui.parse.addr import parse_ip_addr, parse_ip_addr_json
    from anycast_tui.parse.link import parse_ip_link, parse_ip_link_json

    sim = SimFabric()
    sim.fail_device("leaf02")  # some ports without carrier
    ptext, pjson = (parse_ip_link, parse_ip_link_json) if what == "link" else (parse_ip_addr, parse_ip_addr_json)
    rtext = render.render_links_text if what == "link" else render.render_addrs_text
    rjson = render.render_links_json if what == "link" else render.render_addrs_json
    for dev in ("spine01", "leaf01", "server01"):
        text = sim.handle(dev, f"ip {what} show").stdout
        js = sim.handle(dev, f"ip -j {what} show").stdout
        assert pjson(js) == ptext(text)
        assert rtext(ptext(text)) == text and rjson(pjson(js)) == js


def test_kept_answers_follow_every_change_and_unknown_lines_are_not_kept():
    from anycast_tui.lab.sim import SimFabric

    sim = SimFabric()
    line = "ip -j -4 route show table all"
    before = sim.handle("spine01", line).stdout
    assert sim.handle("spine01", line).stdout == before
    sim.fail_device("leaf03")
    after = sim.handle("spine01", line).stdout
    assert after != before and after.count('"gateway"') < before.count('"gateway"')
    sim.restore_device("leaf03")
    assert sim.handle("spine01", line).stdout == before
    kept = sim.shell.kept_answers
    for i in range(50):
        assert sim.handle("spine01", f"ip route show table {i}; true").exit_status != 0
    assert sim.shell.kept_answers == kept
