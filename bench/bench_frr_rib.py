#!/usr/bin/env python3
"""Benchmark: what reading FRR's RIB costs a poll, on the real BGP lab (FRR in namespaces, SSH on 127.0.0.1).

    python3 bench/bench_frr_rib.py [--polls 10]

Brings up a BGP lab (prefix ``atui-t-bench-rib-``, removed at the end), then in the same run polls every
device ``--polls`` times with warm connections, interleaved, twice each:

* kernel only: the inventory as it was before FRR devices were read (``platform = "linux"``);
* 2 vtysh per poll: ``show ip route json`` and ``show ipv6 route json`` as separate commands of every
  poll (``FRR_ROUTES``, what the first design ran; BGP state would have added two more);
* 1 vtysh per poll: ``FRR_RIB``, the four ``-c`` (both RIBs, BGP ipv4/ipv6) in one vtysh, read at every
  poll (``rib_interval_s=0``: the cost while the FIB changes at every poll);
* 1 vtysh, steady: the default ``rib_interval_s`` (10 s): a fabric that does not change.

Prints the median wall time of one poll cycle of all devices, and the CPU (user+sys of this process,
the lab's SSH daemon and the nsenter/vtysh it runs) per cycle.  Needs root, iproute2 and FRR.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from anycast_tui.collect.commands import FRR_ROUTES  # noqa: E402
from anycast_tui.collect.inventory import load_inventory  # noqa: E402
from anycast_tui.collect.poller import Poller  # noqa: E402
from anycast_tui.lab import labctl  # noqa: E402

PREFIX = "atui-t-bench-rib-"


class TwoVtysh(Poller):
    """The RIB as two separate vtysh commands of every poll."""

    async def _rib(self, dev, cmd, kernel):  # noqa: ANN001
        outs = await asyncio.gather(*(self._optional(dev, c) for c in FRR_ROUTES))
        return "\n".join(o for o in outs if o)


def _cpu_of(pid: int) -> float:
    f = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(f[11]) + int(f[12]) + int(f[13]) + int(f[14])) / os.sysconf("SC_CLK_TCK")


async def _measure(cls, inv, polls: int, daemon: int, **kw) -> tuple[float, float, int]:
    p = cls(inv, **kw)
    try:
        await p.poll_once()  # connect, probe, first RIB read
        times, cpu0 = [], time.process_time() + _cpu_of(daemon)
        for _ in range(polls):
            t0 = time.perf_counter()
            snap = await p.poll_once()
            times.append(time.perf_counter() - t0)
        cpu = (time.process_time() + _cpu_of(daemon) - cpu0) / polls
        ribs = sum(len(s.rib.routes) for s in snap.devices.values() if s.rib is not None)
        return statistics.median(times), cpu, ribs
    finally:
        await p.stop()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--polls", type=int, default=10)
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="bench-rib-"))
    labctl.down(PREFIX, tmp / "state")
    lab = labctl.Lab.up(labctl.LabConfig(prefix=PREFIX, state_dir=str(tmp / "state"),
                                         inventory=str(tmp / "lab.toml"), routing="bgp"))
    try:
        lab.wait_converged()
        daemon = int((Path(lab.state_dir) / "labssh.pid").read_text())
        frr = load_inventory(lab.cfg.inventory)
        kernel_only = dataclasses.replace(frr, devices=tuple(dataclasses.replace(d, platform="linux")
                                                             for d in frr.devices))
        modes = {"kernel only (baseline)": (Poller, kernel_only, {}),
                 "2 vtysh every poll": (TwoVtysh, frr, {"rib_interval_s": 0.0}),
                 "1 vtysh every poll": (Poller, frr, {"rib_interval_s": 0.0}),
                 "1 vtysh, steady (10 s)": (Poller, frr, {})}
        rows: dict[str, list] = {m: [] for m in modes}
        for _ in range(2):  # interleaved, twice: the machine is noisy
            for m, (cls, inv, kw) in modes.items():
                rows[m].append(asyncio.run(_measure(cls, inv, args.polls, daemon, **kw)))
        print(f"{len(frr.devices)} devices, {args.polls} polls per run, 2 runs each; medians")
        for m, rs in rows.items():
            wall = statistics.median(r[0] for r in rs)
            cpu = statistics.median(r[1] for r in rs)
            print(f"  {m:<24} poll cycle {wall * 1000:7.1f} ms   CPU {cpu * 1000:7.1f} ms/cycle "
                  f"({cpu * 100:5.1f} % of a core at 1 poll/s)   RIB entries {rs[-1][2]}")
    finally:
        labctl.down(PREFIX, tmp / "state")


if __name__ == "__main__":
    main()
