"""``lab up --sflow`` (issue 12 item 5): real pmacct exporters on every spine and leaf, real TCP/UDP traffic
through the kernels, datagrams received on a socket opened inside the lab's collector namespace.

Checked on the decoded datagrams (``parse/sflow.py``, ``parse/ipfix.py``): every sample's agent is a lab device
(and the datagram came from that address); each sample of the lab's traffic carries as its output ifIndex the
kernel's ifIndex of the interface the kernel sends that packet out of (``ip route get`` with the 5-tuple);
at 1 in 1 every packet is sampled exactly once per device it crossed; no datagram is lost on the way; the IPFIX
exporter's records carry the same egress interfaces and the same packet counts.  Then: a killed exporter is
one line of ``lab status``, and ``lab down`` leaves no pmacctd and no namespace.
"""

from __future__ import annotations

import ipaddress
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections import Counter, defaultdict
from pathlib import Path

import pytest

from anycast_tui.collect.inventory import load_inventory
from anycast_tui.collect.nssocket import udp_socket
from anycast_tui.lab import exporters, labctl, netns, procs
from anycast_tui.lab.labctl import Lab
from anycast_tui.lab.nslab import ANYCAST
from anycast_tui.lab.traffic import PORT
from anycast_tui.model.samples import ExportDatagram, FlowSample
from anycast_tui.parse.ipfix import ExportDecoder
from anycast_tui.parse.sflow import decode_sflow

from .conftest import SFLOW_PREFIX, TEST_PREFIX, lab_ready
from .labwalk import held_traffic, lab_flows

pytestmark = pytest.mark.kernel
ROOT = Path(__file__).resolve().parents[2]
PREFIX = SFLOW_PREFIX
CLIENTS = ipaddress.ip_network("203.0.113.0/24")
ANY = ipaddress.ip_address(ANYCAST).packed
DEADLINE_S = 120.0  # generous: samples leave on pmacct's next tick, IPFIX records after 5 s idle
N_FLOWS = 60  # half TCP, half UDP
PROTO = {6: "tcp", 17: "udp"}


class Receiver:
    """Every datagram the socket gets, on a thread, with its source address and arrival time."""

    def __init__(self, sock: socket.socket):
        self.sock = sock
        self.got: list[tuple[bytes, str, float]] = []
        self.lock = threading.Lock()
        self.stop = threading.Event()
        sock.settimeout(0.2)
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        while not self.stop.is_set():
            try:
                data, addr = self.sock.recvfrom(65535)
            except socket.timeout:
                continue
            with self.lock:
                self.got.append((data, addr[0], time.time()))

    def datagrams(self) -> list[tuple[bytes, str, float]]:
        with self.lock:
            return list(self.got)

    def close(self) -> None:
        self.stop.set()
        self.thread.join()
        self.sock.close()


def decode_all(raw: list[tuple[bytes, str, float]]) -> tuple[list[ExportDatagram], list[ExportDatagram]]:
    """(sFlow datagrams, IPFIX datagrams): the first bytes tell them apart (version 5 as 32 bits, 10 as 16)."""
    sflow, ipfix = [], []
    ipfix_decoder = ExportDecoder()
    for data, src, t in raw:
        if data[:4] == b"\0\0\0\x05":
            dg = decode_sflow(data, received=t)
            assert dg.exporter == src  # the agent address is the address it sends from
            sflow.append(dg)
        else:
            assert data[:2] == b"\0\x0a", data[:8].hex()
            ipfix.append(ipfix_decoder.decode(data, src, t))
    return sflow, ipfix


def lab_traffic(s: FlowSample) -> tuple[str, tuple[int, str, int, int]] | None:
    """('fwd' | 'rev', (proto, client address, client port, ...)) of a sample of the lab's service traffic."""
    if s.family != 4 or s.proto not in PROTO:
        return None
    src, dst = ipaddress.ip_address(s.src), ipaddress.ip_address(s.dst)
    if s.dst == ANY and s.dport == PORT and src in CLIENTS:
        return "fwd", (s.proto, str(src), s.sport, s.dport)
    if s.src == ANY and s.sport == PORT and dst in CLIENTS:
        return "rev", (s.proto, str(dst), s.dport, s.sport)
    return None


def kernel_egress(lab: Lab, device: str, keys: set[tuple[str, tuple[int, str, int, int]]]) -> dict:
    """(direction, flow) -> the interface ``device``'s kernel sends that packet out of (forwarded traffic)."""
    node = lab.topo.node(device)
    spine = node.role == "spine"
    iif = {"fwd": "client" if spine else "spine01", "rev": "leaf01" if spine else f"server{node.index:02d}"}
    order = sorted(keys)
    lines = []
    for direction, (proto, client, cport, _) in order:
        if direction == "fwd":
            lines.append(f"route get {ANYCAST} from {client} iif {iif['fwd']} ipproto {PROTO[proto]} sport {cport} "
                         f"dport {PORT}")
        else:
            lines.append(f"route get {client} from {ANYCAST} iif {iif['rev']} ipproto {PROTO[proto]} sport {PORT} "
                         f"dport {cport}")
    out = netns.batch(node.ns, lines).splitlines()
    answers = [ln for ln in out if " dev " in ln]
    assert len(answers) == len(order), out[:5]
    return {k: a.split(" dev ")[1].split()[0] for k, a in zip(order, answers)}


def udp_packets(samples: list[FlowSample]) -> Counter:
    """(direction, flow) -> packets, of the lab's UDP flows (an sFlow sample is one packet, an IPFIX record many)."""
    out: Counter = Counter()
    for s in samples:
        t = lab_traffic(s)
        if t is not None and t[1][0] == 17:
            out[t] += s.packets
    return out


def by_device(dgs: list[ExportDatagram], agents: dict[str, str]) -> dict[str, list[FlowSample]]:
    out: dict[str, list[FlowSample]] = defaultdict(list)
    for dg in dgs:
        out[agents[dg.exporter]] += dg.samples
    return out


def test_sflow_and_ipfix_carry_the_port_each_packet_left_on(sflow_lab: Lab):
    lab = sflow_lab
    inv = load_inventory(lab.cfg.inventory)
    fe = inv.flow_export
    assert fe is not None and fe.namespace == exporters.collector_ns(lab.topo)
    agents = {d.sflow_agent: d.name for d in inv.devices if d.sflow_agent}
    assert set(agents.values()) == {n.name for n in exporters.exporting(lab.topo)}
    ipfix_dev = lab.cfg.ipfix[0]  # spine01
    rx = Receiver(udp_socket(fe.host, fe.port, namespace=fe.namespace))
    try:
        lab.start_services()
        flows = lab_flows(N_FLOWS, first_port=31000)
        with held_traffic(lab, flows) as report:
            pass  # round 1 answered while held, round 2 on leaving the block
        udp = {(f["proto"], f["src"], f["sport"], PORT): sum(1 for a in f["answers"] if a)
               for f in report if f["proto"] == 17}
        assert len(udp) == N_FLOWS // 2 and all(n >= 1 for n in udp.values()), report

        def counts(sflow: list[ExportDatagram]) -> dict[tuple[str, str, tuple], int]:
            c: Counter = Counter()
            for dg in sflow:
                role = lab.topo.node(agents[dg.exporter]).role
                for s in dg.samples:
                    t = lab_traffic(s)
                    if t is not None:
                        c[(role, *t)] += 1
            return c

        def complete(sflow: list[ExportDatagram], ipfix: list[ExportDatagram]) -> bool:
            c = counts(sflow)
            for key, answered in udp.items():
                for role in ("spine", "leaf"):
                    if c[(role, "fwd", key)] < 2 or c[(role, "rev", key)] < answered:
                        return False
            # IPFIX: a record of each UDP flow the device forwarded, once idle (exporters.IPFIX_TIMEOUT_S)
            seen = udp_packets(by_device(sflow, agents)[ipfix_dev])
            return bool(seen) and udp_packets([s for dg in ipfix for s in dg.samples]) == seen

        deadline = time.monotonic() + DEADLINE_S
        while True:
            sflow, ipfix = decode_all(rx.datagrams())
            if complete(sflow, ipfix) or time.monotonic() > deadline:
                break
            time.sleep(0.5)
    finally:
        rx.close()
    assert complete(sflow, ipfix), "not every packet of the lab's UDP flows was sampled (or recorded) in time"

    # every datagram comes from a lab device; none lost on the way (sequences contiguous per agent)
    assert {dg.exporter for dg in sflow} <= set(agents)
    for agent in {dg.exporter for dg in sflow}:
        seqs = sorted(dg.sequence for dg in sflow if dg.exporter == agent)
        assert seqs == list(range(seqs[0], seqs[0] + len(seqs))), (agent, seqs[:20])
    assert all(dg.drops == 0 for dg in sflow)

    # at 1 in 1, each packet of a UDP flow is sampled once on the one spine and the one leaf it crossed
    c = counts(sflow)
    for key, answered in udp.items():
        for role in ("spine", "leaf"):
            assert (c[(role, "fwd", key)], c[(role, "rev", key)]) == (2, answered), (role, key)

    # the output ifIndex is the kernel's ifIndex of the interface the kernel sends the packet out of
    tcp_hashed = lab.cfg.nohash_error is not None  # without the client's tc program TCP is hashed by its socket
    checked = Counter()
    for device, samples in by_device(sflow, agents).items():
        node = lab.topo.node(device)
        ifindex = exporters.ifindexes(node)
        fabric = {ifindex[i] for i in exporters.fabric_ifs(lab.topo, node)}
        assert {s.output_if for s in samples} <= fabric  # only fabric ports are captured, outbound
        assert all(s.input_if is None and s.sampling_rate == 1 for s in samples)
        ours = [(lab_traffic(s), s) for s in samples]
        ours = [(t, s) for t, s in ours if t is not None]
        egress = kernel_egress(lab, device, {t for t, _ in ours})
        uplinks = {ifindex[s.name] for s in lab.topo.role("spine")} if node.role == "leaf" else fabric
        for (direction, key), s in ours:
            want = ifindex[egress[(direction, key)]]
            if key[0] == 6 and (tcp_hashed and direction == "fwd" or direction == "rev" and node.role == "leaf"):
                # the server's (or unhashed client's) TCP socket hash rides the packet: policy 1 uses it, so the
                # kernel's 5-tuple lookup cannot say which uplink; it still is one of them
                assert s.output_if in uplinks, (device, key)
                continue
            assert s.output_if == want, (device, direction, key, s.output_if, egress[(direction, key)])
            checked[node.role] += 1
    assert checked["spine"] >= 4 * N_FLOWS // 2 and checked["leaf"] >= 3 * N_FLOWS // 2, checked

    # IPFIX (spine01): records of the same flows with the same packet counts (waited for above), the same egress
    assert {dg.exporter for dg in ipfix} == {lab.topo.node(d).loopback for d in lab.cfg.ipfix}
    ifindex = exporters.ifindexes(lab.topo.node(ipfix_dev))
    records = [(lab_traffic(s), s) for dg in ipfix for s in dg.samples]
    records = [(t, s) for t, s in records if t is not None]
    assert len(udp_packets([s for _, s in records])) >= N_FLOWS // 8  # both directions of its share of the flows
    egress = kernel_egress(lab, ipfix_dev, {t for t, _ in records})
    for t, s in records:
        if t[1][0] == 17 or not tcp_hashed or t[0] == "rev":
            assert s.output_if == ifindex[egress[t]], (t, s.output_if)


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, "-m", "anycast_tui.commands.lab", *args], capture_output=True, text=True,
                          timeout=120, env=env, cwd="/")


@pytest.mark.parametrize("args, want", [
    (["--ipfix", "server01"], "--ipfix server01: not a spine or leaf of this lab"),
    (["--sampling-rate", "0"], "--sampling-rate 0: expected 1..1000000 (1 in N packets)"),
])
def test_up_refuses_bad_exporter_options_in_one_line(tmp_path: Path, args: list[str], want: str):
    lab_ready("static")
    prefix = TEST_PREFIX + "sx-"
    res = _cli("--prefix", prefix, "--state-dir", str(tmp_path / "state"), "up", "--routing", "static", "--sflow",
               *args, "-c", str(tmp_path / "lab.toml"))
    assert (res.returncode, res.stderr) == (2, f"anycast-tui lab: {want}\n")
    assert netns.list_namespaces(prefix) == [] and not (tmp_path / "state").exists()


def _pmacctd_lines(prefix: str) -> list[str]:
    out = subprocess.run(["pgrep", "-a", "pmacctd"], capture_output=True, text=True).stdout
    return [ln for ln in out.splitlines() if prefix in ln]


def test_a_killed_exporter_is_one_status_line_and_down_leaves_nothing(sflow_lab: Lab):
    lab = sflow_lab
    lines = _pmacctd_lines(PREFIX)
    exporting = exporters.exporting(lab.topo)
    assert len([ln for ln in lines if "Core Process" in ln]) == len(exporting)  # one pmacctd per device
    pids = {int(ln.split()[0]) for ln in lines}
    lab.fail("leaf03")  # its interfaces go down and up again under the capture: the exporter stays
    lab.restore("leaf03")
    lab.wait_converged()
    assert all(st == "running" for st in exporters.status(lab.topo, lab.state_dir, tuple(lab.cfg.ipfix)).values())
    core = procs.read_pid(exporters.run_dir(lab.state_dir) / "leaf02.pid")
    assert core in pids
    os.kill(core, signal.SIGKILL)
    deadline = time.monotonic() + 60
    while procs.alive(core, PREFIX + "leaf02") and time.monotonic() < deadline:
        time.sleep(0.05)
    res = _cli("--prefix", PREFIX, "--state-dir", str(lab.state_dir), "status")
    assert res.returncode == 0, res.stderr
    bad = [ln for ln in res.stdout.splitlines() if ln.startswith("exporter ")]
    assert len(bad) == 1 and bad[0].startswith("exporter leaf02: not running: pmacctd core"), res.stdout
    assert f"exporters: {len(exporting) - 1} of {len(exporting)} running" in res.stdout
    assert lab.status()["devices"]["leaf02"]["exporter"].startswith("not running")

    labctl.down(PREFIX, lab.state_dir)
    assert _pmacctd_lines(PREFIX) == []
    assert not any(procs.alive(p, "pmacctd") for p in pids)
    assert netns.list_namespaces(PREFIX) == []
    assert not exporters.run_dir(lab.state_dir).exists()
