"""Live flows you can trust: alive sockets / conntrack entries only, leftovers counted apart, UDP unknown
without conntrack (collect.flows, parse.ss.heard_ms, model.flows.live_flow_set)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from anycast_tui.collect.flows import CT_TIMEOUT_S, LIVE_WINDOW_S, flows_from_outputs
from anycast_tui.model.flows import LiveFlows, live_flow_set, live_flows
from anycast_tui.model.types import Device, DeviceState, FabricSnapshot, Flow, Health, HealthStatus, Role
from anycast_tui.parse.errors import ParseError
from anycast_tui.parse.ss import heard_ms, parse_ss
from anycast_tui.record.codec import decode, encode

FIX = Path(__file__).resolve().parent.parent / "fixtures" / "parse"
CORPUS = Path(__file__).resolve().parents[2].parent / "shared" / "corpus"
ANY = "192.0.2.53"
PREFIXES = ("192.0.2.0/24",)

# kernel-ss-ti.txt: ``ss -Htin state established`` in a namespace (iproute2 6.1, kernel 6.18) holding two
# connections to 192.0.2.53:8053, both ends in the namespace: 203.0.113.7:41001 asked every 0.5 s, and
# 203.0.113.8:41002 one exchange 7 s before the capture, idle since.
ACTIVE = Flow(6, "203.0.113.7", 41001, ANY, 8053)
IDLE = Flow(6, "203.0.113.8", 41002, ANY, 8053)


def _capture() -> str:
    return (FIX / "kernel-ss-ti.txt").read_text()


def test_timers_of_real_ss_ti_output():
    socks = parse_ss(_capture(), netid="tcp", state="ESTAB")
    assert len(socks) == 4  # two connections, each end
    heard = {s.flow(): heard_ms(s) for s in socks}
    assert heard[ACTIVE] is not None and heard[ACTIVE] < 500  # asked every 0.5 s
    assert heard[IDLE] is not None and heard[IDLE] >= 7000  # idle for the 7 s before the capture


def test_builder_keeps_the_active_connection_and_counts_the_idle_one():
    read = flows_from_outputs({"flows_tcp": _capture()}, PREFIXES)
    assert read.flows == (ACTIVE,)  # the client ends (dst 203.0.113.x) are not anycast flows
    assert read.stale == 1 and read.udp_known is False
    wide = flows_from_outputs({"flows_tcp": _capture()}, PREFIXES, window_s=60.0)
    assert set(wide.flows) == {ACTIVE, IDLE} and wide.stale == 0


@pytest.mark.parametrize("name, heard", [("iproute2__ss-emoitn__1.txt", 2342), ("iproute2__ss-emoitn__2.txt", 14314)])
def test_timers_in_the_corpus(name, heard):
    path = CORPUS / name
    if not path.is_file():
        pytest.skip("shared corpus not present")
    (sock,) = parse_ss(path.read_text())
    assert heard_ms(sock) == heard  # lastack printed below lastrcv: the peer's ACK came later than its data


def test_ss_without_tcp_info_cannot_be_judged():
    path = CORPUS / "iproute2__ss-t__1.txt"
    if not path.is_file():
        pytest.skip("shared corpus not present")
    socks = parse_ss(path.read_text())
    assert socks and all(heard_ms(s) is None for s in socks)
    read = flows_from_outputs({"flows_tcp": path.read_text()}, ())
    assert read.flows == () and read.stale == len({s.flow() for s in socks} - {None})


def test_a_timer_ss_leaves_out_is_zero():
    # iproute2 prints lastsnd/lastrcv/lastack only when non-zero: data heard this very millisecond
    (sock,) = parse_ss("0 0 192.0.2.53:443 203.0.113.7:40001\n\t cubic rto:204 mss:1448 cwnd:10 lastsnd:9000\n")
    assert heard_ms(sock) == 0


def test_garbage_timer_names_the_command():
    with pytest.raises(ParseError) as ei:
        flows_from_outputs({"flows_tcp": "0 0 192.0.2.53:443 203.0.113.7:1\n\t mss:1448 lastrcv:soon\n"}, PREFIXES)
    assert ei.value.command == "flows_tcp" and ei.value.reason.startswith("bad lastrcv")
    assert "flows_tcp: bad lastrcv" in str(ei.value)


def _ct(proto: str, timeout: int, state: str, flags: str, sport: int) -> str:
    num = {"tcp": 6, "udp": 17}[proto]
    head = f"{proto}      {num} {timeout} {state}".rstrip()
    return (f"{head} src=203.0.113.9 dst={ANY} sport={sport} dport=53 packets=4 bytes=240 "
            f"src={ANY} dst=203.0.113.9 sport=53 dport={sport} packets=4 bytes=240 {flags} mark=0 use=1\n")


def test_conntrack_alive_means_assured_open_and_fresh():
    full_tcp, full_udp = CT_TIMEOUT_S["tcp"], CT_TIMEOUT_S["udp"]
    w = int(LIVE_WINDOW_S)
    text = "".join([
        _ct("tcp", full_tcp - 1, "ESTABLISHED", "[ASSURED]", 1001),  # alive
        _ct("tcp", full_tcp - w - 2, "ESTABLISHED", "[ASSURED]", 1002),  # quiet beyond the window
        _ct("tcp", 100, "TIME_WAIT", "[ASSURED]", 1003),  # closing
        _ct("udp", full_udp - 1, "", "[ASSURED]", 2001),  # alive UDP stream
        _ct("udp", full_udp - w - 2, "", "[ASSURED]", 2002),  # quiet
        _ct("udp", 29, "", "", 2003),  # replied once, not a stream (30 s timeout, never ASSURED)
    ])
    read = flows_from_outputs({"flows_ct": text}, PREFIXES)
    assert read.flows == (Flow(6, "203.0.113.9", 1001, ANY, 53), Flow(17, "203.0.113.9", 2001, ANY, 53))
    assert read.stale == 4 and read.udp_known is True


def test_conntrack_corpus_entries_are_judged_by_their_timeout():
    path = CORPUS / "conntracktools__conntrack-L__1.txt"
    if not path.is_file():
        pytest.skip("shared corpus not present")
    # 431982 and 431698 s left of 432000: last packet 18 s and 302 s before the listing
    assert flows_from_outputs({"flows_ct": path.read_text()}, ()).stale == 2
    read = flows_from_outputs({"flows_ct": path.read_text()}, (), window_s=60.0)
    assert [f.sport for f in read.flows] == [34846] and read.stale == 1


def test_udp_is_known_only_where_conntrack_tracks():
    ssh = ("tcp      6 431999 ESTABLISHED src=198.18.0.1 dst=198.18.0.31 sport=50000 dport=22 src=198.18.0.31 "
           "dst=198.18.0.1 sport=22 dport=50000 [ASSURED] mark=0 use=1\n")
    # conntrack tracks: at least the collector's own SSH connection is listed, so no UDP entry means no UDP flow
    read = flows_from_outputs({"flows_ct": ssh}, PREFIXES)
    assert read.udp_known is True and read.flows == () and read.stale == 0
    # an empty table: the kernel tracks nothing in this namespace (no rule needs conntrack): UDP unknown
    assert flows_from_outputs({"flows_ct": ""}, PREFIXES).udp_known is False
    assert flows_from_outputs({"flows_tcp": "", "flows_udp": ""}, PREFIXES).udp_known is False


def test_a_flow_alive_in_one_source_is_not_stale_in_another():
    ss = "0 0 192.0.2.53:53 203.0.113.9:1001\n\t mss:1448 lastsnd:90000 lastrcv:90000 lastack:90000\n"
    ct = _ct("tcp", CT_TIMEOUT_S["tcp"], "ESTABLISHED", "[ASSURED]", 1001)
    read = flows_from_outputs({"flows_tcp": ss, "flows_ct": ct}, PREFIXES)
    assert read.flows == (Flow(6, "203.0.113.9", 1001, ANY, 53),) and read.stale == 0


# ------------------------------------------------------------------ live_flow_set

F1, F2, F3 = (Flow(6, "203.0.113.1", 1000, ANY, 443), Flow(17, "203.0.113.2", 53, ANY, 53),
              Flow(6, "203.0.113.3", 1000, "192.0.2.54", 443))
OK = Health(HealthStatus.OK)


def _st(name: str, role: Role = Role.SERVER, health: Health = OK, **kw) -> DeviceState:
    return DeviceState(Device(name, role), health=health, **kw)


def test_live_flow_set_sums_stale_and_knows_udp_only_when_every_reporter_reads_conntrack():
    snap = FabricSnapshot(0, {
        "spine01": _st("spine01", Role.SPINE),  # no flow source: not a reporter
        "s1": _st("s1", flows=(F1, F3), flows_stale=2, flows_udp_known=True),
        "s2": _st("s2", flows=(F1, F2), flows_stale=1, flows_udp_known=True),
        "s3": _st("s3", flows_stale=4, flows_udp_known=True),  # leftovers only: still a reporter
        "s4": _st("s4", health=Health(HealthStatus.STALE), flows=(F1,), flows_stale=9),  # not fresh: left out
    })
    got = live_flow_set(snap, ANY)
    assert got == LiveFlows((F1, F2), 7, True, 3)
    assert live_flows(snap, ANY) == [F1, F2]
    no_ct = dict(snap.devices, s5=_st("s5", flows=(F2,)))  # reads ss only: its UDP is unknown
    got = live_flow_set(FabricSnapshot(0, no_ct), ANY)
    assert got.udp_known is False and got.devices == 4 and got.stale == 7


def test_live_flow_set_without_any_source():
    snap = FabricSnapshot(0, {"spine01": _st("spine01", Role.SPINE), "s1": _st("s1")})
    assert live_flow_set(snap, ANY) == LiveFlows((), 0, False, 0)
    ct_only = FabricSnapshot(0, {"s1": _st("s1", flows_udp_known=True)})  # conntrack read, nothing in it
    assert live_flow_set(ct_only, ANY) == LiveFlows((), 0, True, 1)


def test_new_device_state_fields_survive_a_recording():
    st = _st("s1", flows=(F1,), flows_stale=3, flows_udp_known=True)
    assert decode(DeviceState, encode(st)) == st
    plain = _st("s2")
    assert decode(DeviceState, encode(plain)) == plain
    assert decode(DeviceState, encode(dataclasses.replace(plain, flows_udp_known=True))).flows_udp_known is True
