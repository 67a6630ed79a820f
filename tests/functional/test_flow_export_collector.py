"""The flow-export collector over a real UDP socket on 127.0.0.1, fed the datagrams real exporters sent (pmacct
sfprobe: sFlow v5; nfprobe: IPFIX and NetFlow v9 — tests/fixtures/export, made by make_captures.sh).

Checked against what the capture script sent (``sent.json``): samples reach the sink under the device the
agent maps to; datagrams from addresses outside the inventory are dropped and counted; a datagram missing
from the sequence is counted as lost, with its samples; malformed datagrams are counted per agent with the
reason and collection goes on."""

from __future__ import annotations

import asyncio
import ipaddress
import json
import socket
from pathlib import Path

import pytest

from anycast_tui.collect.flowexport import FlowExportCollector
from anycast_tui.parse.pcap import iter_udp

FIX = Path(__file__).resolve().parent.parent / "fixtures" / "export"
SENT = json.loads((FIX / "sent.json").read_text())


def payloads(name: str) -> list[bytes]:
    return [d.payload for d in iter_udp(FIX / name)]


async def feed(col: FlowExportCollector, datagrams: list[bytes], expect: int) -> None:
    """Send over real UDP from 127.0.0.1 and wait until the collector has seen ``expect`` datagrams in all."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        for d in datagrams:
            s.sendto(d, ("127.0.0.1", col.port))
    for _ in range(500):
        seen = sum(st.datagrams + st.malformed for st in col.stats.values()) + col.unknown
        if seen >= expect:
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"collector saw {seen} of {expect} datagrams")


def tuples(samples) -> set[tuple]:  # noqa: ANN001
    return {(s.proto, str(ipaddress.ip_address(s.src)), s.sport, str(ipaddress.ip_address(s.dst)), s.dport)
            for s in samples}


SENT_TUPLES = {(f["proto"], f["src"], f["sport"], f["dst"], f["dport"]) for f in SENT["flows"]}


@pytest.mark.parametrize("capture", ["sflow.pcap", "ipfix.pcap", "netflow9.pcap"])
async def test_real_exporters_datagrams_reach_the_sink_under_their_device(capture):
    got: list[tuple[str, object]] = []
    # sFlow maps by the agent address inside the datagram; IPFIX / v9 by the datagram's source (here 127.0.0.1)
    col = FlowExportCollector({SENT["sflow_agent"]: "leaf01", "127.0.0.1": "leaf02"},
                              lambda dev, ss: got.extend((dev, s) for s in ss), host="127.0.0.1", port=0)
    await col.start()
    try:
        data = payloads(capture)
        await feed(col, data, len(data))
    finally:
        col.close()
    device = "leaf01" if capture == "sflow.pcap" else "leaf02"
    assert {d for d, _ in got} == {device}
    st = col.stats[device]
    assert st.datagrams == len(data) and st.malformed == 0 and col.unknown == 0
    assert SENT_TUPLES <= tuples(s for _, s in got)  # every flow the script sent was exported and decoded
    # pmacct was told to report what left on r1 as the output port
    out_ports = {s.output_if for _, s in got if (s.sport, s.dport) != (0, 0)}
    assert out_ports == {SENT["router_ifindex"]["r1"]}
    if capture == "sflow.pcap":
        assert st.datagrams_lost == 0 and st.samples_lost == 0


async def test_addresses_outside_the_inventory_are_dropped_and_counted():
    got = []
    col = FlowExportCollector({"198.18.9.9": "spine01"}, lambda dev, ss: got.extend(ss), host="127.0.0.1", port=0)
    await col.start()
    try:
        data = payloads("sflow.pcap") + payloads("ipfix.pcap")
        await feed(col, data, len(data))
    finally:
        col.close()
    assert got == [] and col.unknown == len(data)
    assert set(col.unknown_addresses) == {SENT["sflow_agent"], "127.0.0.1"}
    assert "not in the inventory dropped" in col.lines()[-1]


async def test_a_missing_datagram_is_counted_lost_and_malformed_ones_do_not_stop_collection():
    got = []
    col = FlowExportCollector({SENT["sflow_agent"]: "leaf01", "127.0.0.1": "leaf01"},
                              lambda dev, ss: got.extend(ss), host="127.0.0.1", port=0)
    await col.start()
    try:
        data = payloads("sflow.pcap")
        # data[2] (sequence 3, its 8 samples) is not sent
        broken = [data[1][:30], b"\x00\x00\x00\x05" + b"\xff" * 40, b"garbage", b""]
        await feed(col, [data[0], data[1], *broken, *data[3:]], len(data) - 1 + len(broken))
    finally:
        col.close()
    st = col.stats["leaf01"]
    assert st.datagrams == len(data) - 1
    assert st.datagrams_lost == 1
    assert st.samples_lost == 8
    assert st.malformed == len(broken)  # an empty datagram is one too
    assert st.last_reason and "\n" not in st.last_reason
    assert sum(st.reasons.values()) == len(broken)
    assert len(got) == st.samples  # every decodable datagram's samples arrived
    assert "malformed" in col.stats["leaf01"].line()
