"""The flow-export collector: sFlow v5 and IPFIX / NetFlow v9 datagrams over UDP (asyncio), decoded by
``parse/sflow.py`` and ``parse/ipfix.py``, mapped to inventory devices, handed on as ``FlowSample``s.

* One UDP endpoint (default port 6343, the sFlow port; IPFIX/v9 exporters may send to the same one: the kind is
  told from the payload's version field) — bound here, or a ready socket (``sock=``: the lab opens one inside
  its collector namespace).
* Agents map to devices by the sFlow agent address in the datagram, else by the datagram's source address
  (``agents``: address -> device name, from each device's ``sflow_agent`` or host).  Datagrams from any other
  address are dropped and counted (``unknown``, with the newest few addresses), never decoded.
* Loss is counted, never guessed away: datagram sequence gaps per agent and sub-agent, flow-sample sequence
  gaps per data source, and the drops the agent itself reports.  A malformed datagram is counted per agent
  with its reason and never stops the collector.
* Bounded: per-agent state only for inventory devices; reasons kept per agent are capped.

Read-only and passive: it never sends anything.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import time
from collections import Counter, OrderedDict
from dataclasses import dataclass, field
from typing import Callable, Mapping

from anycast_tui.collect.nssocket import udp_socket
from anycast_tui.model.samples import ExportDatagram, FlowSample
from anycast_tui.parse.errors import ExportDecodeError
from anycast_tui.parse.ipfix import ExportDecoder
from anycast_tui.parse.sflow import decode_sflow

log = logging.getLogger(__name__)

DEFAULT_PORT = 6343
REASONS_KEPT = 8  # distinct malformed reasons counted per agent; the rest under "other"
UNKNOWN_KEPT = 16  # newest unknown source addresses remembered

Sink = Callable[[str, list[FlowSample]], None]  # (device, samples of one datagram)


@dataclass(slots=True)
class AgentStats:
    """What one exporting device sent (all counters since start)."""

    device: str
    datagrams: int = 0
    samples: int = 0
    counter_samples: int = 0
    skipped: int = 0  # records / samples not decoded (non-IP, unknown formats, data before its template)
    datagrams_lost: int = 0  # sequence gaps
    samples_lost: int = 0  # flow-sample sequence gaps
    drops: int = 0  # packets the agent reported it could not sample
    malformed: int = 0
    reasons: Counter = field(default_factory=Counter)  # malformed reason -> count (REASONS_KEPT distinct)
    last_reason: str = ""
    last_seen: float = 0.0
    kinds: set[str] = field(default_factory=set)
    _seq: dict[tuple[str, int], int] = field(default_factory=dict, repr=False)
    _sample_seq: dict[tuple[str, int], int] = field(default_factory=dict, repr=False)

    def line(self) -> str:
        """One line for humans: ``leaf01: 1,204 samples in 310 datagrams, 2 lost, 1 malformed (…)``."""
        parts = [f"{self.samples:,} samples in {self.datagrams:,} datagrams"]
        if self.datagrams_lost or self.samples_lost:
            parts.append(f"{self.datagrams_lost:,} datagrams / {self.samples_lost:,} samples lost")
        if self.drops:
            parts.append(f"{self.drops:,} packets dropped by the agent")
        if self.malformed:
            parts.append(f"{self.malformed:,} malformed (last: {self.last_reason})")
        return f"{self.device}: " + ", ".join(parts)


class FlowExportCollector(asyncio.DatagramProtocol):
    """See the module doc.  ``start()`` binds (or adopts ``sock``); ``close()`` ends it."""

    def __init__(self, agents: Mapping[str, str], sink: Sink, *, host: str = "0.0.0.0", port: int = DEFAULT_PORT,
                 sock: socket.socket | None = None, clock: Callable[[], float] = time.time) -> None:
        self.agents = dict(agents)
        self.sink = sink
        self.host, self.port, self.sock = host, port, sock
        self.clock = clock
        self.stats: dict[str, AgentStats] = {d: AgentStats(d) for d in dict.fromkeys(self.agents.values())}
        self.unknown = 0  # datagrams from addresses not in the inventory (dropped)
        self.unknown_addresses: OrderedDict[str, int] = OrderedDict()
        self.sink_errors = 0
        self._ipfix = ExportDecoder()
        self._transport: asyncio.DatagramTransport | None = None
        self._last_total = 0

    # ------------------------------------------------------------------ lifecycle

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        if self.sock is None:  # a 4 MiB receive buffer: a burst waits in the kernel, not dropped
            self.sock = udp_socket(self.host, self.port)
        transport, _ = await loop.create_datagram_endpoint(lambda: self, sock=self.sock)
        self._transport = transport
        sockname = transport.get_extra_info("sockname")
        if sockname:
            self.host, self.port = sockname[0], sockname[1]

    def close(self) -> None:
        if self._transport is not None:
            self._transport.close()
            self._transport = None

    @property
    def listening(self) -> str:
        return f"{self.host}:{self.port}" if ":" not in self.host else f"[{self.host}]:{self.port}"

    # ------------------------------------------------------------------ datagrams

    def connection_made(self, transport: asyncio.BaseTransport) -> None:  # noqa: D401 - asyncio protocol
        pass

    def error_received(self, exc: Exception) -> None:
        log.warning("flow export socket: %s", exc)

    def datagram_received(self, data: bytes, addr: tuple) -> None:  # type: ignore[override]
        self.receive(data, str(addr[0]))

    def receive(self, data: bytes, source: str, received: float | None = None) -> None:
        """One datagram from ``source`` (also what offline input and tests call)."""
        now = self.clock() if received is None else received
        source = source.removeprefix("::ffff:")
        version = int.from_bytes(data[:4], "big") if len(data) >= 4 else -1
        try:
            if version == 5:
                dg = decode_sflow(data, received=now)
            elif len(data) >= 2 and int.from_bytes(data[:2], "big") in (9, 10):
                device = self.agents.get(source)
                if device is None:
                    self._unknown(source)
                    return
                dg = self._ipfix.decode(data, source, now)
            else:
                raise ExportDecodeError(f"not sFlow v5, IPFIX or NetFlow v9 (version field {version})")
        except ExportDecodeError as e:
            device = self.agents.get(source)
            if device is None:
                self._unknown(source)
            else:
                self._malformed(self.stats[device], str(e), now)
            return
        device = self.agents.get(dg.exporter) or self.agents.get(source)
        if device is None:
            self._unknown(dg.exporter)  # the agent's own address (sFlow), the source's (IPFIX / v9)
            return
        self._account(self.stats[device], dg, now)
        if dg.samples:
            try:
                self.sink(device, list(dg.samples))
            except Exception:  # the consumer's bug must not stop collection
                self.sink_errors += 1
                log.exception("flow export sink failed")

    def _unknown(self, address: str) -> None:
        self.unknown += 1
        self.unknown_addresses[address] = self.unknown_addresses.pop(address, 0) + 1
        while len(self.unknown_addresses) > UNKNOWN_KEPT:
            self.unknown_addresses.popitem(last=False)

    @staticmethod
    def _malformed(st: AgentStats, reason: str, now: float) -> None:
        st.malformed += 1
        reason = reason.splitlines()[0][:200] if reason else "malformed"
        st.last_reason, st.last_seen = reason, now
        kind = reason.split(":")[0][:60]
        if kind in st.reasons or len(st.reasons) < REASONS_KEPT:
            st.reasons[kind] += 1
        else:
            st.reasons["other"] += 1

    @staticmethod
    def _account(st: AgentStats, dg: ExportDatagram, now: float) -> None:
        st.datagrams += 1
        st.samples += len(dg.samples)
        st.counter_samples += dg.counter_samples
        st.skipped += sum(n for _, n in dg.skipped)
        st.drops += dg.drops
        st.last_seen = now
        st.kinds.add(dg.kind.value)
        key = (dg.exporter, dg.sub_agent)
        last = st._seq.get(key)
        if last is not None and dg.sequence > last + 1 and dg.kind.value != "ipfix":
            st.datagrams_lost += dg.sequence - last - 1  # IPFIX's sequence counts records, not datagrams
        st._seq[key] = dg.sequence
        for source_id, seq, count in dg.sample_seqs:
            skey = (dg.exporter, source_id)
            prev = st._sample_seq.get(skey)
            first = seq - count + 1
            if prev is not None and first > prev + 1:
                st.samples_lost += first - prev - 1
            st._sample_seq[skey] = seq

    # ------------------------------------------------------------------ reading

    def stats_changed(self) -> bool:
        """Anything received since the last call (the recorder's summaries skip idle periods)."""
        total = sum(st.datagrams + st.malformed for st in self.stats.values()) + self.unknown
        changed, self._last_total = total != self._last_total, total
        return changed

    def lines(self) -> list[str]:
        """Per-agent lines and the unknown-source line (headless output, ``--help`` of what was seen)."""
        out = [st.line() for st in self.stats.values() if st.datagrams or st.malformed]
        if self.unknown:
            out.append(f"{self.unknown:,} datagrams from addresses not in the inventory dropped "
                       f"(newest: {', '.join(self.unknown_addresses)})")
        return out
