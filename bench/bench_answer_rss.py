#!/usr/bin/env python3
"""Benchmark: the collector's memory when a device answers one command with a very large, valid output.

    python3 bench/bench_answer_rss.py [--mb 200] [--polls 3] [--runs 3] [--before TREE]

One device (the embedded SSH server in a child process, canned leaf outputs) answers
``ip -j -4 route show table all`` with ``--mb`` MB of valid routes (4 next hops each, as a full
table looks); its other commands answer normally.  A fresh client process polls it ``--polls``
times with the default settings (``max_output_mib`` 512, so the answer is accepted and parsed),
then reports its peak RSS (VmHWM) and its RSS after the last poll.  The same for a "changing" large
answer (every other poll every route's metric differs: the old table's records and the new ones are
both alive while it is parsed, the worst case) and for a junk answer of that size (``y`` lines, as
``yes`` prints: a flooding device).  Answers over 16 MiB are spooled to an anonymous file in
``/var/tmp`` (``spool_dir``), so their bytes are not in the process.

Baseline (same run, same client code): the same device answering its normal-size route table.
``--before TREE`` runs the same client from another checkout too (e.g. ``git worktree add
/tmp/before HEAD~3``), interleaved, so old and new are measured on the same machine at the same
time.  Goal (issue 16): the monitor's RSS stays under 300 MB with a 200 MB answer.  Medians of
``--runs`` client processes.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from childserver import ChildServer

ROOT = Path(__file__).resolve().parents[1]
GOAL_MB = 300

_NH = {"gateway": "198.18.1.2", "dev": "swp1", "weight": 1, "flags": ["onlink"]}


def big_routes(mb: int, metric: int = 20) -> str:
    """``ip -j -4 route show`` of about ``mb`` MB: BGP /24s with 4 next hops each."""
    nhs = [dict(_NH, gateway=f"198.18.1.{k}") for k in range(2, 6)]
    one = len(json.dumps({"dst": "10.0.0.0/24", "protocol": "bgp", "metric": 20, "flags": [], "nexthops": nhs}))
    n = mb * 1_000_000 // (one + 1)
    return json.dumps([{"dst": f"{10 + i // 65536}.{i // 256 % 256}.{i % 256}.0/24", "protocol": "bgp",
                        "metric": metric, "flags": [], "nexthops": nhs} for i in range(n)], separators=(",", ":"))


# --------------------------------------------------------------------------- server (child process)


async def _serve(workdir: Path, mb: int, junk: bool, changing: bool) -> None:
    sys.path.insert(0, str(ROOT))
    from anycast_tui.collect.commands import LINUX_POLL
    from anycast_tui.lab.sshserver import CommandResult, SSHFarm

    fixtures = ROOT / "tests" / "functional" / "ssh_fixtures" / "leaf"
    outputs = {c.line: (fixtures / f"{c.id}.out").read_text() for c in LINUX_POLL}
    if mb:
        outputs[LINUX_POLL[0].line] = "y\n" * (mb * 500_000) if junk else big_routes(mb)
    other = big_routes(mb, metric=30) if changing else None  # every other poll: every route's metric differs
    asked = [0]

    def handle(line: str) -> object:
        if line == LINUX_POLL[0].line and other is not None:
            asked[0] += 1
            return CommandResult(other if asked[0] % 2 == 0 else outputs[line])
        if line in outputs:
            return CommandResult(outputs[line])
        return CommandResult("", f"sh: {line.split()[0]}: not found\n", 127)

    farm = SSHFarm({"leaf01": handle}, workdir=workdir)  # type: ignore[dict-item]
    await farm.start()
    ep = farm.endpoints["leaf01"]
    print(json.dumps({"port": ep.port, "key": str(farm.client_key_path), "known_hosts": str(farm.known_hosts_path),
                      "user": farm.user}), flush=True)
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)  # until the parent closes stdin
    await farm.stop()


# --------------------------------------------------------------------------- client (child process, any tree)

CLIENT = r"""
import asyncio, gc, json, sys
from pathlib import Path
from anycast_tui.collect.inventory import DeviceConfig, Inventory
from anycast_tui.collect.poller import Poller
from anycast_tui.model.types import Role

def kb(field):
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])

info, polls = json.loads(sys.argv[1]), int(sys.argv[2])
cfg = DeviceConfig(name="leaf01", role=Role.LEAF, platform="sim", host="127.0.0.1", port=info["port"],
                   user=info["user"], key_path=Path(info["key"]), known_hosts=Path(info["known_hosts"]),
                   stream=False, command_timeout_s=600.0)

async def run():
    poller = Poller(Inventory((cfg,), 1.0, ("192.0.2.53/32",)))
    try:
        for _ in range(polls):
            snap = await poller.poll_once()
        st = snap.devices["leaf01"]
        gc.collect()
        print(json.dumps({"status": st.health.status.value, "error": st.health.error, "routes": len(st.routes),
                          "hwm_kb": kb("VmHWM"), "rss_kb": kb("VmRSS")}), flush=True)
    finally:
        await poller.stop()

asyncio.run(run())
"""


def _client(tree: Path, info: dict, polls: int) -> dict:
    env = {**os.environ, "PYTHONPATH": str(tree)}
    proc = subprocess.run([sys.executable, "-c", CLIENT, json.dumps(info), str(polls)], capture_output=True,
                          text=True, env=env, cwd=tree)
    if proc.returncode != 0:
        raise SystemExit(f"client ({tree}) failed: {proc.stderr.strip()[-400:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _server(workdir: str, mb: int, junk: bool = False, changing: bool = False) -> ChildServer:
    return ChildServer(__file__, ["--serve", workdir, "--mb", str(mb)] + (["--junk"] if junk else [])
                       + (["--changing"] if changing else []))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--mb", type=int, default=200, help="size of the large answer in MB")
    ap.add_argument("--polls", type=int, default=3, help="polls per client process")
    ap.add_argument("--runs", type=int, default=3, help="client processes per figure (medians)")
    ap.add_argument("--before", type=Path, help="another checkout to run the same client from")
    ap.add_argument("--serve", help=argparse.SUPPRESS)
    ap.add_argument("--junk", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--changing", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.serve:
        asyncio.run(_serve(Path(args.serve), args.mb, args.junk, args.changing))
        return 0
    trees = [("this tree", ROOT)] + ([("before", args.before.resolve())] if args.before else [])
    with tempfile.TemporaryDirectory() as tmp:
        servers = {"normal": _server(f"{tmp}/normal", 0), "large": _server(f"{tmp}/large", args.mb),
                   "changing": _server(f"{tmp}/changing", args.mb, changing=True),
                   "junk": _server(f"{tmp}/junk", args.mb, junk=True)}
        try:
            results: dict[tuple[str, str], list[dict]] = {}
            for _ in range(args.runs):
                for label, tree in trees:
                    for kind, srv in servers.items():
                        results.setdefault((label, kind), []).append(_client(tree, srv.info, args.polls))
        finally:
            for srv in servers.values():
                srv.close()
    print(f"one device, {args.polls} polls per process, medians of {args.runs} processes; "
          f"large = ip -j -4 route show of {args.mb} MB (valid routes, 4 next hops each)")
    for (label, kind), rs in results.items():
        hwm = statistics.median(r["hwm_kb"] for r in rs) / 1024
        rss = statistics.median(r["rss_kb"] for r in rs) / 1024
        r0 = rs[0]
        what = f"{r0['routes']:,} routes" if r0["status"] == "ok" else f"{r0['status']}: {r0['error']}"
        goal = "   (baseline)" if kind == "normal" else f"   goal < {GOAL_MB} MB"
        print(f"  {label:9s} {kind:8s} answer: peak RSS {hwm:6.0f} MiB, after the polls {rss:6.0f} MiB "
              f"({what}){goal}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
