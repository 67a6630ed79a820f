"""Sampled packets the fabric exports (sFlow v5 flow samples, IPFIX / NetFlow v9 flow records): the typed
contract between the decoders (``parse/sflow.py``, ``parse/ipfix.py``), the export collector
(``collect/flowexport.py``) and the model (the sampled-flow window, placement checked against the fabric).

Addresses are packed bytes (4 or 16), not ``ipaddress`` objects: a collector decodes hundreds of thousands of
samples a second and the model turns them into a ``FlowArray`` in bulk.  Counts are as sampled; the estimate
of the real traffic is ``packets * sampling_rate`` (sFlow: one sampled packet stands for ``sampling_rate``).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field


class ExportKind(str, enum.Enum):
    SFLOW = "sflow"
    IPFIX = "ipfix"
    NETFLOW9 = "netflow9"


@dataclass(frozen=True, slots=True)
class FlowSample:
    """One sampled packet (sFlow) or one flow record (IPFIX / v9) of an IP flow."""

    exporter: str  # the agent address (sFlow) or the datagram's source address (IPFIX / v9)
    kind: ExportKind
    source_id: int  # sFlow: data source (type << 24 | index) ; IPFIX: observation domain ; v9: source id
    sampling_rate: int  # 1 in N (1: every packet); 0: unknown
    input_if: int | None  # ifIndex the packet came in on; None: unknown
    output_if: int | None  # ifIndex of the one port it left on; None: unknown, discarded or multiple
    family: int  # 4 or 6
    proto: int
    src: bytes  # packed, 4 or 16 bytes
    dst: bytes
    sport: int = 0
    dport: int = 0
    flowlabel: int = 0  # IPv6 only
    tcp_flags: int = 0
    packets: int = 1  # sampled packets this record stands for (sFlow: 1)
    octets: int = 0  # sampled bytes (sFlow: frame length)
    output_discarded: bool = False  # sFlow: the packet was dropped (output format 1, with the reason)
    output_multiple: int = 0  # sFlow: sent to several ports (output format 2): how many, 0 when one, -1 unknown (> 1)
    received: float = 0.0  # UNIX seconds the datagram arrived (the capture's timestamp offline)
    # added by the decoders (optional, defaults keep older constructions valid):
    vlan_in: int | None = None  # sFlow extended switch record (1001): 802.1Q VLAN in / out; None: no record
    vlan_out: int | None = None
    nexthop: bytes = b""  # the next hop the device chose, packed: sFlow extended router record (1002), IPFIX
    # ipNextHopIPv4Address / ipNextHopIPv6Address (15 / 62); b"": not exported

    @property
    def estimated_packets(self) -> int:
        return self.packets * max(self.sampling_rate, 1)

    @property
    def estimated_octets(self) -> int:
        return self.octets * max(self.sampling_rate, 1)


@dataclass(frozen=True, slots=True)
class ExportDatagram:
    """One export datagram, decoded."""

    exporter: str
    kind: ExportKind
    sequence: int  # sFlow: datagram sequence (per agent and sub-agent); IPFIX: sequence; v9: package sequence
    sub_agent: int = 0  # sFlow sub-agent id; IPFIX / v9: observation domain / source id
    uptime_ms: int = 0
    samples: tuple[FlowSample, ...] = ()
    # per data source (sFlow source id, IPFIX domain): the sample sequence of the last flow sample and the
    # drops it reports, so the collector can count samples lost between datagrams and on the device
    sample_seqs: tuple[tuple[int, int, int], ...] = ()  # (source_id, last sample sequence, samples in this datagram)
    drops: int = 0  # packets the agent could not sample (sum of the flow samples' drops fields)
    counter_samples: int = 0  # counted, not decoded
    skipped: tuple[tuple[str, int], ...] = ()  # (what, count): records / samples not decoded (non-IP, unknown formats)
    extra: dict[str, int] = field(default_factory=dict, compare=False)
