#!/usr/bin/env python3
"""Benchmark: the flow-export collector's CPU at a given sample rate, end to end over real UDP on 127.0.0.1.

    python3 bench/bench_flowexport.py [--rate 20000] [--seconds 10] [--flows 50000]

A sender process sends hsflowd-like sFlow v5 datagrams (8 flow samples each, 128-byte Ethernet/IPv4/TCP
headers, an extended switch record, 1 in 400) from ``--flows`` distinct client flows to 192.0.2.53 at
``--rate`` samples per second, each sample's output port one of the device's interfaces.  The collector
process runs the monitor's path: ``FlowExportCollector`` (receive, decode, map the agent) → ``SampledTraffic``
(the sampled-flow window, and once a second the placement check against a simulated spine's state).  Printed:
the collector process's CPU time over the run as a share of one core, samples received and lost; baseline in
the same run: a bare asyncio UDP endpoint counting the same datagrams (the floor any Python collector pays).
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing as mp
import struct
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests" / "unit"))

import sflow_build as sb  # noqa: E402

AGENT = "198.18.255.1"


def datagrams(n_flows: int, ifindexes: list[int]) -> list[bytes]:
    out = []
    per = 8
    for d in range(max(1, n_flows // per)):
        samples = []
        for k in range(per):
            i = d * per + k
            src = f"203.0.113.{1 + i % 250}"
            frame = sb.ether(sb.ipv4(src, "192.0.2.53", 6, sb.tcp(1024 + i % 60000, 443, data=b"\0" * 1460)),
                             0x0800)
            samples.append(sb.flow_sample([sb.record(1001, struct.pack("!IIII", 10, 0, 10, 0)),
                                           sb.raw_header(frame[:128], frame_length=1518)],
                                          seq=i + 1, rate=400, pool=(i + 1) * 400, inp=99,
                                          out=ifindexes[i % len(ifindexes)]))
        out.append(sb.datagram(samples, agent=AGENT, seq=d + 1))
    return out


def sender(port: int, rate: int, seconds: float, data: list[bytes], ready: "mp.Event") -> None:
    import socket

    ready.wait()
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    per_s = rate / 8
    t0 = time.perf_counter()
    sent = 0
    while True:
        elapsed = time.perf_counter() - t0
        if elapsed >= seconds:
            break
        due = int(elapsed * per_s)
        while sent < due:
            s.sendto(data[sent % len(data)], ("127.0.0.1", port))
            sent += 1
        time.sleep(0.001)
    s.close()


def collector(kind: str, seconds: float, q: "mp.Queue", ready: "mp.Event", port_q: "mp.Queue") -> None:
    async def main() -> None:
        if kind == "baseline":
            count = [0]

            class Count(asyncio.DatagramProtocol):
                def datagram_received(self, data, addr):  # noqa: ANN001
                    count[0] += 1

            tr, _ = await asyncio.get_running_loop().create_datagram_endpoint(Count, local_addr=("127.0.0.1", 0))
            port_q.put(tr.get_extra_info("sockname")[1])
            c0 = time.process_time()
            ready.set()
            await asyncio.sleep(seconds + 0.5)
            q.put((time.process_time() - c0, count[0] * 8, 0))
            tr.close()
            return
        from anycast_tui.lab.sim import SimFabric
        from anycast_tui.model.timeline import Timeline
        from anycast_tui.sampledtraffic import FlowExport, SampledTraffic

        sim = SimFabric()
        tl = Timeline(anycast_prefixes=("192.0.2.53/32",))
        tl.apply(sim.snapshot(int(time.time() * 1000)))
        traffic = SampledTraffic(tl, sim.roles())
        export = FlowExport(traffic, {AGENT: "spine01"}, host="127.0.0.1", port=0)
        await export.start()
        port_q.put(export.collector.port)
        c0 = time.process_time()
        ready.set()
        await asyncio.sleep(seconds + 0.5)
        cpu = time.process_time() - c0
        st = export.collector.stats["spine01"]
        q.put((cpu, st.samples, st.datagrams_lost * 8))
        await export.stop()

    asyncio.run(main())


def run(kind: str, rate: int, seconds: float, data: list[bytes]) -> tuple[float, int, int]:
    ctx = mp.get_context("spawn")
    q, port_q, ready = ctx.Queue(), ctx.Queue(), ctx.Event()
    c = ctx.Process(target=collector, args=(kind, seconds, q, ready, port_q))
    c.start()
    port = port_q.get(timeout=60)
    s = ctx.Process(target=sender, args=(port, rate, seconds, data, ready))
    s.start()
    s.join()
    out = q.get(timeout=120)
    c.join()
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[1])
    ap.add_argument("--rate", type=int, default=20_000)
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--flows", type=int, default=50_000)
    a = ap.parse_args()
    from anycast_tui.lab.sim import SimFabric

    sim = SimFabric()
    ifx = [i.ifindex for i in sim.interfaces("spine01") if i.name.startswith("swp")]
    data = datagrams(a.flows, ifx)
    print(f"{a.rate:,} samples/s for {a.seconds:g} s, {len(data):,} distinct datagrams of 8 samples")
    for kind in ("baseline", "collector"):
        cpu, samples, lost = run(kind, a.rate, a.seconds, data)
        print(f"{kind:>9}: {100 * cpu / (a.seconds + 0.5):5.1f} % of one core, {samples:,} samples received"
              + (f", {lost:,} lost in sequence gaps" if kind == "collector" else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
