"""Ask the lab's kernels where flows go: ``ip route get`` hop by hop (the forwarding path).

The client's lookup is its own output path (its traffic is locally generated);
every further hop is asked as forwarded traffic (``iif`` = the interface the
packet arrived on).  One ``ip -batch`` per device and hop keeps it fast.
"""

from __future__ import annotations

import json
import subprocess
from collections import defaultdict
from contextlib import contextmanager
from typing import TYPE_CHECKING, Iterator

from anycast_tui.lab.nslab import ANYCAST, Topology
from anycast_tui.lab.traffic import PORT
from anycast_tui.model.types import Flow

if TYPE_CHECKING:
    from anycast_tui.lab.labctl import Lab

PROTO = {6: "tcp", 17: "udp"}


def _batch(ns: str, lines: list[str]) -> list[str]:
    proc = subprocess.run(["ip", "-n", ns, "-batch", "-"], input="\n".join(lines) + "\n", capture_output=True,
                          text=True, timeout=120)
    out = [ln for ln in proc.stdout.splitlines() if ln.startswith(ANYCAST) or ln.startswith("local ")]
    if len(out) != len(lines):
        raise RuntimeError(f"{ns}: {len(lines)} lookups, {len(out)} answers: {proc.stderr.strip()[:300]}")
    return out


def _dev(answer: str) -> str | None:
    if answer.startswith("local "):
        return None
    return answer.split(" dev ")[1].split()[0]


def final_servers(topo: Topology, flows: list[Flow], max_hops: int = 6) -> list[str]:
    """Per flow, the device that delivers it locally (its answering server), as the kernels say now."""
    at = ["client"] * len(flows)
    iif: list[str | None] = [None] * len(flows)
    done: list[str | None] = [None] * len(flows)
    for _ in range(max_hops):
        todo: dict[str, list[int]] = defaultdict(list)
        for i in range(len(flows)):
            if done[i] is None:
                todo[at[i]].append(i)
        if not todo:
            break
        for dev, rows in todo.items():
            lines = []
            for i in rows:
                f = flows[i]
                via = f" iif {iif[i]}" if iif[i] else ""
                lines.append(f"route get {f.dst} from {f.src}{via} ipproto {PROTO[f.proto]} sport {f.sport} "
                             f"dport {f.dport}")
            for i, ans in zip(rows, _batch(topo.node(dev).ns, lines)):
                nxt = _dev(ans)
                if nxt is None or ans.split()[0] == "local":
                    done[i] = dev
                else:  # interfaces are named after the device at their other end
                    iif[i], at[i] = dev, nxt
    if any(d is None for d in done):
        raise RuntimeError("some flows were not delivered within the hop limit")
    return [str(d) for d in done]


def lab_flows(n: int, *, tcp_share: float = 0.5, first_port: int = 20000) -> list[Flow]:
    """``n`` deterministic flows from 203.0.113.0/24 to the anycast service."""
    out = []
    n_tcp = int(n * tcp_share)
    for i in range(n):
        out.append(Flow(6 if i < n_tcp else 17, f"203.0.113.{10 + i % 200}", first_port + i, ANYCAST, PORT))
    return out


@contextmanager
def held_traffic(lab: "Lab", flows: list[Flow]) -> Iterator[list[dict]]:
    """The lab's traffic client holding ``flows`` open (connections up when the block starts); after the
    block the list given holds the client's report: one dict per flow (answers, error)."""
    report: list[dict] = []
    client = subprocess.Popen(lab.client_argv(2), stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert client.stdin and client.stdout
    try:
        client.stdin.write(json.dumps([{"proto": f.proto, "src": f.src, "sport": f.sport} for f in flows]) + "\n")
        client.stdin.flush()
        assert client.stdout.readline().strip() == "ready 0"
        yield report
        client.stdin.write("\n")
        client.stdin.flush()
        lines = [ln for ln in client.stdout.read().splitlines() if ln.startswith("{")]
        client.wait(timeout=60)
        report += json.loads(lines[-1])["flows"]
    finally:
        if client.poll() is None:
            client.kill()
