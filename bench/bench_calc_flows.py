#!/usr/bin/env python3
"""Benchmark: ``anycast-tui calc`` on 500,000 flows, whole processes, against the kernel answering the same flows.

    python3 bench/bench_calc_flows.py [--flows 500000] [--runs 3] [--keep DIR]

Flows: mixed, to one anycast address each family (80 % IPv4 from 203.0.113.0/24 to 192.0.2.53, 20 % IPv6 from
2001:db8:cafe::/64 hosts to 2001:db8:53::53; TCP and UDP, random source ports, a few service ports).  A real
router in network namespaces (``atui-bench-*``, tests/kernel/kernelrouter.py: 198.18.0.0/15 links, 8 next hops,
hash policy 1 with a fixed seed) carries a weighted multipath route per family; its ``ip -j route show`` (v4 and
v6), ``ip -j nexthop show`` and buckets are calc's tables.  Timed, as whole processes, median of ``--runs``:

  kernel   ip -n NS -batch FILE  (one ``route get DST from SRC iif rin ipproto P sport S dport D`` a flow)
  csv      anycast-tui calc … --flows F.csv --json > /dev/null
  parquet  anycast-tui calc … --flows F.parquet --out OUT.parquet

plus, for the record, CSV in → Parquet out and Parquet in → JSON out.  Goals: csv ≥ 5× the kernel, parquet ≥ 20×.
Every answer of calc is checked against the kernel's (the gateway of each flow, 100 % required: exit 1 otherwise).
Namespace work runs under ``flock /tmp/anycast-ns.lock`` and the namespaces are removed even on failure.
"""

from __future__ import annotations

import argparse
import fcntl
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests" / "kernel"))

import numpy as np  # noqa: E402

from anycast_tui.commands.columnar import addr_frags, chunks, frag  # noqa: E402
from anycast_tui.lab import netns  # noqa: E402
from anycast_tui.model.flows import proto_label  # noqa: E402
from anycast_tui.model.flowarray import FlowArray  # noqa: E402

SEED = 0x2B7E1516
WAYS = 8
LOCK = "/tmp/anycast-ns.lock"
# calc runs as installed: its bytecode compiled once (pip does so; PYTHONDONTWRITEBYTECODE would make every run
# compile every module again), in a cache of the work directory, warmed by one untimed run.
ENV = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
ENV["PYTHONPATH"] = str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")


def make_flows(n: int) -> FlowArray:
    rng = np.random.default_rng(7)
    n6 = n // 5
    a = FlowArray.random(n - n6, rng=rng, dst="192.0.2.53")
    b = FlowArray.random(n6, rng=rng, family=6, src_net="2001:db8:cafe::/120", dst="2001:db8:53::53")
    cols = {c: np.concatenate([getattr(a, c), getattr(b, c)]) for c in ("family", "proto", "src", "dst")}
    dport = np.array([53, 443, 80, 853], np.uint16)[rng.integers(0, 4, n)]
    sport = rng.integers(1024, 65536, n).astype(np.uint16)
    return FlowArray.from_columns(cols["family"], cols["proto"], cols["src"], cols["dst"], sport, dport)


def write_csv(fa: FlowArray, path: Path) -> None:
    """The flows CSV, written column-wise (calc's own writer pieces)."""
    n = len(fa)
    frags = [frag([proto_label(p) + "," for p in range(256)], fa.proto)]
    frags += addr_frags(fa.family, fa.src, after=b",")
    frags.append(frag([f"{p}," for p in range(65536)], fa.sport))
    frags += addr_frags(fa.family, fa.dst, after=b",")
    frags.append(frag([f"{p}\n" for p in range(65536)], fa.dport))
    with open(path, "wb") as out:
        out.write(b"proto,src,sport,dst,dport\n")
        for c in chunks(frags, n):
            out.write(c)


def batch_lines(path: Path, csv: Path) -> None:
    """``route get`` lines of the CSV's flows."""
    with open(csv) as src, open(path, "w") as out:
        next(src)
        for line in src:
            proto, s, sport, d, dport = line.rstrip("\n").split(",")
            out.write(f"route get {d} from {s} iif rin ipproto {proto} sport {sport} dport {dport}\n")


def kernel_gateways(text: str) -> list[str]:
    out = []
    for line in text.splitlines():
        if line.startswith((" ", "\t")) or not line.strip():
            continue
        parts = line.split()
        out.append(parts[parts.index("via") + 1] if "via" in parts else "-")
    return out


@contextmanager
def ns_lock():
    with open(LOCK, "a") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def timed(argv: list[str], runs: int, stdout: str = os.devnull) -> list[tuple[float, float]]:
    """(wall, CPU) seconds of each run of ``argv`` as a whole process; CPU is its user + system time (what a
    shared machine's other load does not add to)."""
    times = []
    for _ in range(runs):
        with open(stdout, "wb") as out:
            before = resource.getrusage(resource.RUSAGE_CHILDREN)
            t = time.perf_counter()
            proc = subprocess.run(argv, stdout=out, stderr=subprocess.PIPE, env=ENV)
            wall = time.perf_counter() - t
            after = resource.getrusage(resource.RUSAGE_CHILDREN)
        times.append((wall, after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime))
        if proc.returncode != 0:
            raise SystemExit(f"{' '.join(argv[:4])} …: exit {proc.returncode}: {proc.stderr.decode()[-500:]}")
    return times


def medians(times: list[tuple[float, float]]) -> tuple[float, float]:
    return statistics.median(t[0] for t in times), statistics.median(t[1] for t in times)


def kernel_part(work: Path, runs: int) -> tuple[list[str], list[tuple[float, float]], list[str]]:
    """Build the router, capture its tables, time ip -batch; (table args, times, kernel gateways)."""
    from kernelrouter import KernelRouter  # tests/kernel: the kernel tests' builder

    with ns_lock(), netns.Namespaces(f"bench-flows{os.getpid()}-") as group:
        kr = KernelRouter.build(group, WAYS, seed=SEED, policy=1)
        kr.route_multipath(range(WAYS), weights=[1, 2, 3, 1, 1, 2, 1, 1])
        kr.route_multipath(range(WAYS), weights=[2, 1, 1, 1, 3, 1, 1, 1], family=6)
        routes = kr.ip("-j", "-4", "route", "show").strip()[:-1] + "," + kr.ip("-j", "-6", "route", "show").strip()[1:]
        files = {}
        for name, text in (("routes", routes), ("nexthops", kr.ip("-j", "nexthop", "show")),
                           ("buckets", kr.ip("-j", "nexthop", "bucket", "show"))):
            files[name] = work / f"{name}.json"
            files[name].write_text(text)
        argv = ["ip", "-n", kr.router, "-batch", str(work / "batch.txt")]
        times = timed(argv, runs)
        answers = work / "kernel.txt"
        timed(argv, 1, str(answers))
    tables = ["--routes", str(files["routes"]), "--nexthops", str(files["nexthops"]),
              "--buckets", str(files["buckets"]), "--hash-policy", "1", "--hash-seed", str(SEED)]
    return tables, times, kernel_gateways(answers.read_text())


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--flows", type=int, default=500_000)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--keep", metavar="DIR", help="work in DIR and keep its files")
    a = ap.parse_args()
    why = netns.available()
    if why is not None:
        print(f"needs the kernel baseline: {why}")
        return 2
    work = Path(a.keep or tempfile.mkdtemp(prefix="atui-bench-flows-"))
    work.mkdir(parents=True, exist_ok=True)
    try:
        import pyarrow.csv as pacsv
        import pyarrow.parquet as pq

        fa = make_flows(a.flows)
        csv = work / "flows.csv"
        write_csv(fa, csv)
        pq.write_table(pacsv.read_csv(csv), work / "flows.parquet")
        batch_lines(work / "batch.txt", csv)
        tables, k_times, kernel = kernel_part(work, a.runs)
        ENV["PYTHONPYCACHEPREFIX"] = str(work / "pycache")
        calc = [sys.executable, "-m", "anycast_tui", "calc", *tables]
        runs = {
            "csv": (calc + ["--flows", str(csv), "--json"], "CSV in, JSON out (stdout)"),
            "parquet": (calc + ["--flows", str(work / "flows.parquet"), "--out", str(work / "out.parquet")],
                        "Parquet in, Parquet out"),
            "csv-parquet": (calc + ["--flows", str(csv), "--out", str(work / "out2.parquet")], "CSV in, Parquet out"),
            "parquet-json": (calc + ["--flows", str(work / "flows.parquet"), "--json"], "Parquet in, JSON out"),
        }
        timed(runs["parquet"][0], 1)  # compiles the bytecode once
        results = {name: timed(argv, a.runs) for name, (argv, _) in runs.items()}
        predicted = pq.read_table(work / "out.parquet", columns=["gateway"]).column("gateway").to_pylist()
        agree = sum(p == k for p, k in zip(predicted, kernel)) / max(len(kernel), 1)
        same = pq.read_table(work / "out2.parquet").equals(pq.read_table(work / "out.parquet"))

        k_wall, k_cpu = medians(k_times)
        print(f"flows   {a.flows:,} ({a.flows - a.flows // 5:,} IPv4, {a.flows // 5:,} IPv6), {WAYS}-way weighted "
              f"multipath per family; medians of {a.runs} runs, whole processes; wall and CPU (user+sys) seconds")
        print(f"kernel  ip -batch route get: wall {k_wall:.2f} s, CPU {k_cpu:.2f} s = "
              f"{a.flows / k_wall / 1e3:.0f} k flows/s  (baseline)")
        goals = {"csv": 5, "parquet": 20}
        for name, (_, label) in runs.items():
            wall, cpu = medians(results[name])
            goal = goals.get(name)
            verdict = f"  goal >= {goal}x: {'OK' if k_wall / wall >= goal else 'BELOW GOAL'}" if goal else ""
            print(f"calc    {label:<26} wall {wall:.2f} s = {k_wall / wall:4.1f}x the kernel; "
                  f"CPU {cpu:.2f} s = {k_cpu / cpu:4.1f}x{verdict}")
        print(f"check   calc agrees with the kernel on {agree:.2%} of {len(kernel):,} flows; "
              f"CSV and Parquet inputs give the same answers: {same}")
        print(f"load    {os.getloadavg()[0]:.1f} (1-min load average, {os.cpu_count()} CPUs)")
        return 0 if agree == 1.0 and len(predicted) == len(kernel) == a.flows and same else 1
    finally:
        if not a.keep:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
