"""Flow sets: CSV files, synthetic client populations, live flows and the seed document's sample flows.

Sources of the flows an impact is counted on (``SOURCES``): ``synthetic`` (a
seeded sample population), ``live`` (connections read with ``ss`` /
``conntrack`` on anycast servers, ``DeviceState.flows``) and ``configured``
(a flows CSV the user gave).

CSV format: a header naming at least ``proto,src,sport,dst,dport`` (any order),
optionally ``ingress`` (device the flow enters at) and ``group`` (a label tying
related flows together, e.g. an FTP control and data connection).  ``proto``
is ``tcp``, ``udp``, ``icmp`` or a protocol number.  Written here
(:func:`write_flows_csv`), read by ``parse/flowcsv.py`` (``read_flows_csv``).
"""

from __future__ import annotations

import csv
import io
import ipaddress
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from anycast_tui.model.flowarray import FlowArray
from anycast_tui.model.types import FabricSnapshot, Flow, HealthStatus, Role

REQUIRED = ("proto", "src", "sport", "dst", "dport")
OPTIONAL = ("ingress", "group")
# What ``calc --out`` writes after a flow's own columns: a flows Parquet file may carry them (they are ignored).
ANSWER_COLUMNS = ("outcome", "gateway", "dev", "route", "nhid", "placement", "type", "reason", "candidates")
PROTO_NAMES = {"tcp": 6, "udp": 17, "icmp": 1, "icmpv6": 58, "ipv6-icmp": 58, "sctp": 132}
PROTO_LABELS = {6: "tcp", 17: "udp", 1: "icmp", 58: "icmpv6", 132: "sctp"}

# The seed document's two sample flows (cl-ecmpcalc on spine02): one client, UDP to DNS.
SAMPLE_CLIENT = "203.0.113.10"
SAMPLE_SERVICE = "192.0.2.53"
SAMPLE_SPORTS = (32700, 31884)


@dataclass(frozen=True, slots=True)
class FlowMeta:
    """Per-flow columns that are not hash inputs: ``ingress`` and ``group`` (object arrays, None when absent).

    ``*_factors``: the same column as (distinct values, int32 code per flow) when the reader made it so (the
    vectorised readers do): writers go by the codes instead of touching a Python object per flow."""

    ingress: np.ndarray | None = None
    group: np.ndarray | None = None
    ingress_factors: tuple[tuple[str | None, ...], np.ndarray] | None = None
    group_factors: tuple[tuple[str | None, ...], np.ndarray] | None = None

    def factors(self, name: str) -> tuple[tuple[str | None, ...], np.ndarray] | None:
        """Column ``name`` ("ingress" or "group") factorized; None when absent."""
        col = getattr(self, name)
        if col is None:
            return None
        known = getattr(self, f"{name}_factors")
        if known is not None:
            return known
        index: dict[str | None, int] = {}
        codes = np.fromiter((index.setdefault(v, len(index)) for v in col), np.int32, len(col))
        return tuple(index), codes


def proto_number(text: str) -> int:
    """``tcp`` → 6, ``17`` → 17; ValueError on anything else."""
    t = text.strip().lower()
    if t in PROTO_NAMES:
        return PROTO_NAMES[t]
    if t.isdigit() and 0 <= int(t) <= 255:
        return int(t)
    raise ValueError(f"unknown protocol {text!r} (tcp, udp, icmp or a number 0-255)")


def proto_label(number: int) -> str:
    return PROTO_LABELS.get(int(number), str(int(number)))


def flows_to_array(flows: list[Flow]) -> tuple[FlowArray, FlowMeta]:
    """FlowArray plus the ingress/group columns of ``flows``."""
    arr = FlowArray.from_flows(flows)
    ingress = np.array([f.ingress for f in flows], dtype=object) if any(f.ingress for f in flows) else None
    group = np.array([f.group for f in flows], dtype=object) if any(f.group for f in flows) else None
    return arr, FlowMeta(ingress=ingress, group=group)


def write_flows_csv(flows: FlowArray, meta: FlowMeta | None = None, path: str | os.PathLike[str] | None = None) -> str:
    """CSV text of ``flows`` (written to ``path`` when given); round-trips through ``parse.flowcsv``."""
    meta = meta or FlowMeta()
    cols = list(REQUIRED) + [c for c in OPTIONAL if getattr(meta, c) is not None]
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(cols)
    for i in range(len(flows)):
        f = flows.flow(i)
        row = [proto_label(f.proto), f.src, f.sport, f.dst, f.dport]
        for c in cols[5:]:
            v = getattr(meta, c)[i]
            row.append("" if v is None else v)
        w.writerow(row)
    text = buf.getvalue()
    if path is not None:
        Path(path).write_text(text, encoding="utf-8")
    return text


def synthetic_flows(n_clients: int, n_flows: int, *, dst: str = SAMPLE_SERVICE, tcp_share: float = 0.5,
                    dports: tuple[int, ...] = (53, 443), seed: int = 1) -> FlowArray:
    """``n_flows`` flows from ``n_clients`` clients in 203.0.113.0/24 to ``dst``.

    Client i has address 203.0.113.(1 + i % 254): beyond 254 clients addresses
    are reused and clients differ by their source ports only.  Each flow picks
    its client, a source port in 1024-65535, TCP with probability
    ``tcp_share`` (else UDP) and a destination port from ``dports``, all from
    a generator seeded with ``seed`` (same arguments, same flows).
    """
    if n_clients < 1 or n_flows < 0:
        raise ValueError("need at least one client and a non-negative flow count")
    if not 0.0 <= tcp_share <= 1.0:
        raise ValueError("tcp_share must be within 0..1")
    if not dports:
        raise ValueError("need at least one destination port")
    rng = np.random.default_rng(seed)
    client = rng.integers(0, n_clients, size=n_flows)
    host = (1 + client % 254).astype(np.uint8)
    dst_ip = ipaddress.ip_address(dst)
    if dst_ip.version != 4:
        raise ValueError("synthetic flows use IPv4 clients (203.0.113.0/24): dst must be IPv4")
    src = np.zeros((n_flows, 4), dtype=np.uint8)
    src[:, :3] = (203, 0, 113)
    src[:, 3] = host
    proto = np.where(rng.random(n_flows) < tcp_share, 6, 17).astype(np.uint8)
    sport = rng.integers(1024, 65536, size=n_flows).astype(np.uint16)
    dport = np.asarray(dports, dtype=np.uint16)[rng.integers(0, len(dports), size=n_flows)]
    return flowarray_v4(src, np.frombuffer(dst_ip.packed, dtype=np.uint8), proto, sport, dport)


def flowarray_v4(src4: np.ndarray, dst4: np.ndarray, proto: np.ndarray, sport: np.ndarray,
                 dport: np.ndarray) -> FlowArray:
    """FlowArray of IPv4 flows from (n,4) / (4,) address bytes and port/proto columns."""
    n = len(proto)
    dst = np.broadcast_to(np.asarray(dst4, dtype=np.uint8), (n, 4))
    return FlowArray.from_columns(np.full(n, 4, dtype=np.uint8), proto, src4, dst, sport, dport)


def sample_flows() -> FlowArray:
    """The seed document's two flows: client UDP sport 32700 and 31884 to 192.0.2.53 port 53."""
    return FlowArray.from_flows([Flow(proto=17, src=SAMPLE_CLIENT, sport=p, dst=SAMPLE_SERVICE, dport=53)
                                 for p in SAMPLE_SPORTS])


SOURCES = ("synthetic", "live", "configured")


@dataclass(frozen=True, slots=True)
class LiveFlows:
    """The live flows to one address across the snapshot's devices, and how far they can be trusted."""

    flows: tuple[Flow, ...]  # alive flows to dst, deduplicated, device order (what live_flows returns)
    stale: int  # leftovers excluded (sum of flows_stale of the OK devices reporting flows)
    udp_known: bool  # every OK device that reports flows for this service also reads conntrack
    devices: int  # OK devices that reported live flows (0: no live source at all)


def live_flow_set(snapshot: FabricSnapshot, dst: str) -> LiveFlows:
    """The alive flows to address ``dst`` read on the snapshot's devices, deduplicated, in device order.

    ``ss`` on an anycast server sees a connection as local = the anycast address, peer =
    the client; ``DeviceState.flows`` already holds it reversed, client -> anycast address,
    the direction the fabric forwards and hashes.  Devices whose data is not fresh (health
    not OK) are left out: their flows are the last good poll's and may be gone.  A device
    reports live flows when it read any flow source (its ``flows``, ``flows_stale`` or
    ``flows_udp_known`` says so; a server with no connection at all and no conntrack reports
    nothing and cannot be told from a device that reads no flows); ``udp_known`` is False when
    no device reports, or one of them reads only ``ss`` (which cannot see UDP served on
    unconnected sockets: their count is unknown, not zero).  ``stale`` sums the reporting
    devices' leftovers, to the anycast prefixes they watch (not only to ``dst``).
    """
    want = str(ipaddress.ip_address(dst))
    seen: dict[Flow, None] = {}
    stale = devices = 0
    udp_known = True
    for st in snapshot.devices.values():
        if st.health.status is not HealthStatus.OK or not (st.flows or st.flows_stale or st.flows_udp_known):
            continue
        devices += 1
        stale += st.flows_stale
        udp_known = udp_known and st.flows_udp_known
        for f in st.flows:
            if f.dst == want:
                seen.setdefault(f, None)
    return LiveFlows(tuple(seen), stale, udp_known and devices > 0, devices)


def live_flows(snapshot: FabricSnapshot, dst: str) -> list[Flow]:
    """The alive flows to address ``dst`` read on the snapshot's OK devices (``live_flow_set(...).flows``)."""
    return list(live_flow_set(snapshot, dst).flows)


def live_ingress(snapshot: FabricSnapshot, flows: list[Flow]) -> np.ndarray | None:
    """Where each live flow enters the fabric: its own ``ingress`` when set, else the client device
    (role client; several alternate) when the inventory has one, else the spines, alternating as the
    synthetic sample does.  None when there is nowhere to enter."""
    clients = sorted(n for n, s in snapshot.devices.items() if s.device.role is Role.CLIENT)
    spines = sorted(n for n, s in snapshot.devices.items() if s.device.role is Role.SPINE)
    entry = clients or spines
    if not entry and not all(f.ingress for f in flows):
        return None
    out = np.empty(len(flows), dtype=object)
    for i, f in enumerate(flows):
        out[i] = f.ingress if f.ingress else entry[i % len(entry)]
    return out
