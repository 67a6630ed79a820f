#!/usr/bin/env python3
"""Benchmark: sFlow v5 decoding, samples a second on one core, against a header-only baseline in the same run.

    python3 bench/bench_sflow.py [--generated 2000] [--runs 7]

Input, a realistic mix: the real pmacct sfprobe datagrams of ``tests/fixtures/export/sflow.pcap`` (replayed
50 times; 1-8 samples each, Ethernet/IPv4/IPv6 headers, UDP/TCP/ICMPv6) and ``--generated`` datagrams like
hsflowd sends (8 flow samples, each a 128-byte Ethernet/IPv4/TCP header cut plus an extended switch record).
Contenders, interleaved, medians of ``--runs``:

* ``decode_sflow``: the decoder (every sample a ``FlowSample``);
* baseline ``header only``: one precompiled ``struct`` unpack of each datagram's header (version, agent, sequence,
  sample count) and nothing else — the floor of any Python decoder that touches each datagram once;
* ``FlowSample.__init__``: constructing the same number of samples through the dataclass's own ``__init__``
  (what the decoder's slot-setting builder avoids).

Times are CPU seconds of this process (``time.process_time``): on a shared machine, time spent waiting for a core
is not decoding.  Goal: decode_sflow >= 200,000 samples/s.  Also printed: IPFIX/v9 records a second (``ExportDecoder`` on the
real nfprobe captures replayed).
"""

from __future__ import annotations

import argparse
import gc
import statistics
import struct
import sys
import time
from pathlib import Path
from typing import Callable

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests" / "unit"))

import sflow_build  # noqa: E402
from anycast_tui.model.samples import ExportKind, FlowSample  # noqa: E402
from anycast_tui.parse.ipfix import ExportDecoder  # noqa: E402
from anycast_tui.parse.pcap import iter_udp  # noqa: E402
from anycast_tui.parse.sflow import decode_sflow  # noqa: E402

GOAL = 200_000
FIX = ROOT / "tests" / "fixtures" / "export"


def median_times(fns: dict[str, Callable[[], object]], runs: int) -> dict[str, float]:
    times: dict[str, list[float]] = {name: [] for name in fns}
    for _ in range(runs):
        for name, fn in fns.items():
            gc.collect()
            t = time.process_time()  # CPU seconds: the machine is shared, waiting for a core is not decoding
            fn()
            times[name].append(time.process_time() - t)
    return {name: statistics.median(ts) for name, ts in times.items()}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--generated", type=int, default=2000, help="hsflowd-like datagrams (8 samples each)")
    ap.add_argument("--runs", type=int, default=7)
    args = ap.parse_args()

    real = [u.payload for u in iter_udp(FIX / "sflow.pcap")]
    mix = real * 50 + [sflow_build.hsflowd_like(8, 128, seq=i + 1) for i in range(args.generated)]
    n_samples = sum(len(decode_sflow(d).samples) for d in mix)
    hdr = struct.Struct("!II4sIIII").unpack_from

    def decode() -> None:
        for d in mix:
            decode_sflow(d)

    def header_only() -> None:
        for d in mix:
            hdr(d, 0)

    src = b"\xcb\0\x71\x01"

    def dataclass_init() -> None:
        k = ExportKind.SFLOW
        for _ in range(n_samples):
            FlowSample("198.18.0.1", k, 3, 400, 2, 3, 4, 6, src, src, 1, 2, 0, 0x18, 1, 1518, False, 0, 0.0, 10, 10, b"")

    nf = {k: [u for u in iter_udp(FIX / f"{k}.pcap")] for k in ("ipfix", "netflow9")}
    nf_records = 0

    def ipfix() -> None:
        nonlocal nf_records
        nf_records = 0
        for _ in range(100):
            dec = ExportDecoder()
            for k in nf:
                for u in nf[k]:
                    nf_records += len(dec.decode(u.payload, u.src).samples)

    med = median_times({"decode_sflow": decode, "header only": header_only, "FlowSample.__init__": dataclass_init,
                        "ipfix": ipfix}, args.runs)
    print(f"mix: {len(mix)} datagrams ({len(real) * 50} real pmacct, {args.generated} hsflowd-like), "
          f"{n_samples} samples; medians of {args.runs} runs, CPU time of one core")
    rate = n_samples / med["decode_sflow"]
    print(f"decode_sflow          {rate:12,.0f} samples/s  ({med['decode_sflow'] / n_samples * 1e6:.2f} µs a sample)")
    print(f"header only (baseline){n_samples / med['header only']:12,.0f} samples/s  "
          f"({len(mix) / med['header only']:,.0f} datagrams/s)")
    print(f"FlowSample.__init__   {n_samples / med['FlowSample.__init__']:12,.0f} objects/s (the dataclass's own init)")
    print(f"ipfix/v9 records      {nf_records / med['ipfix']:12,.0f} records/s (ExportDecoder, real nfprobe captures)")
    print(f"goal >= {GOAL:,} samples/s: {'met' if rate >= GOAL else 'NOT met'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
