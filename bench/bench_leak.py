"""Benchmark: memory of the poller with a failing device, per poll, over many polls (issue 16 item 7).

    python3 bench/bench_leak.py [--polls 10000] [--from-poll 2000] [--runs 3] [--modes auth,refused,timeout]

One device that never works is polled as fast as the poller goes (interval 0):

* ``auth``: an embedded SSH server (anycast_tui.lab.sshserver) that refuses every key (a permanent
  error: the poller asks the device nothing more, each poll reports the same reason);
* ``refused``: a closed port on 127.0.0.1 (every poll past the backoff tries to connect again);
* ``timeout``: a listener that accepts and never sends the SSH banner (connect timeout 20 ms,
  backoff 5-10 ms: a mix of real attempts and polls inside the backoff).

tracemalloc's traced memory after ``--from-poll`` polls and after ``--polls`` polls gives the growth
per poll (bytes), median of ``--runs`` fresh pollers; beside it the same over the first polls (10 %
of ``--polls`` to ``--from-poll``: a leak shows in both, a warm-up only there).  Baseline (before the
fix, same machine, this command): an auth-failing device grew ~2.1 KB per poll without levelling off
(the same exception object re-raised on every poll kept every raise's traceback and frames); after
it, well under 16 B per poll in every mode.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import socket
import statistics
import sys
import tempfile
import tracemalloc
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from anycast_tui.collect.inventory import DeviceConfig, Inventory  # noqa: E402
from anycast_tui.collect.poller import Poller  # noqa: E402
from anycast_tui.model.types import HealthStatus  # noqa: E402

MODES = ("auth", "refused", "timeout")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def _failing_inventory(mode: str, workdir: Path, stack: list) -> Inventory:
    """An inventory of one device ``leaf01`` that fails the way ``mode`` says; ``stack`` collects cleanups."""
    fast = dict(platform="sim", stream=False, connect_timeout_s=0.02, backoff_base_s=0.005, backoff_max_s=0.01,
                use_ssh_config=False, use_agent=False)
    if mode == "auth":
        from anycast_tui.lab.sshserver import CommandResult, SSHFarm

        farm = SSHFarm({"leaf01": lambda line: CommandResult("")}, workdir=workdir)
        await farm.start()
        stack.append(farm.stop)
        farm.endpoints["leaf01"].faults.reject_auth = True
        return farm.inventory(**{**fast, "connect_timeout_s": 5.0})
    known_hosts = workdir / "known_hosts"
    known_hosts.write_text("")
    if mode == "refused":
        port = _free_port()
    elif mode == "timeout":
        held: list[asyncio.StreamWriter] = []

        async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            held.append(writer)  # say nothing; closed by the client's timeout
            await reader.read()
            held.remove(writer)
            writer.close()

        server = await asyncio.start_server(silent, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]

        async def stop() -> None:
            server.close()
            for w in list(held):
                w.close()

        stack.append(stop)
    else:
        raise ValueError(f"unknown mode {mode!r} (one of {', '.join(MODES)})")
    cfg = DeviceConfig("leaf01", host="127.0.0.1", port=port, user="atui", known_hosts=known_hosts,
                       **fast)  # type: ignore[arg-type]
    return Inventory((cfg,), 0.0)


async def growth(mode: str, polls: int, from_poll: int) -> tuple[float, float, str]:
    """(bytes per poll from ``from_poll`` to ``polls``, same over the first 10 % to ``from_poll``, last reason)."""
    stack: list = []
    with tempfile.TemporaryDirectory(prefix="atui-leak-") as tmp:
        try:
            inv = await _failing_inventory(mode, Path(tmp), stack)
            poller = Poller(inv, interval_s=0.0)
            try:
                marks: dict[int, int] = {}
                early = max(1, polls // 10)
                tracemalloc.start()
                try:
                    for i in range(1, polls + 1):
                        await poller.poll_once()
                        if i in (early, from_poll, polls):
                            gc.collect()
                            marks[i] = tracemalloc.get_traced_memory()[0]
                finally:
                    tracemalloc.stop()
                state = poller.snapshot().devices["leaf01"]
                assert state.health.status is HealthStatus.ERROR, state.health
                reason = state.health.error or ""
            finally:
                await poller.stop()
        finally:
            for stop in reversed(stack):
                await stop()
    late = (marks[polls] - marks[from_poll]) / (polls - from_poll)
    first = (marks[from_poll] - marks[early]) / max(1, from_poll - early)
    return late, first, reason


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--polls", type=int, default=10000)
    ap.add_argument("--from-poll", type=int, default=2000)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--modes", default=",".join(MODES))
    args = ap.parse_args(argv)
    if not 0 < args.from_poll < args.polls:
        ap.error("need 0 < --from-poll < --polls")
    early = max(1, args.polls // 10)
    print(f"tracemalloc growth per poll of one failing device, polls {args.from_poll}..{args.polls} "
          f"(and {early}..{args.from_poll}), median of {args.runs} runs; before the fix: auth ~2100 B/poll")
    for mode in args.modes.split(","):
        runs = [asyncio.run(growth(mode, args.polls, args.from_poll)) for _ in range(args.runs)]
        late = statistics.median(r[0] for r in runs)
        first = statistics.median(r[1] for r in runs)
        print(f"  {mode:8s} {late:8.1f} B/poll   ({first:8.1f} B/poll early)   {runs[-1][2]}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
