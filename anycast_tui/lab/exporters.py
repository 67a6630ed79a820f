"""Real sFlow and IPFIX exporters in the lab (``lab up --sflow``): pmacct's ``pmacctd`` on every spine and leaf.

Each device runs one ``pmacctd`` capturing every fabric interface **outbound** only
(``pcap_interfaces_map``: one line per interface, ``direction=out``; ``pcap_ifindex: sys``:
the interface's own kernel ifIndex, ``if_nametoindex`` inside the device's namespace).  pmacctd
then fills a packet's *output* interface with that ifIndex (its input is unknown: the sFlow
``0x3FFFFFFF``), so each sample carries the port the packet **left** on — the device's own
choice of next hop.  A forwarded packet is seen once per device (it enters unseen and leaves
seen).  The sFlow probe (``plugins: sfprobe``) samples 1 in ``sampling_rate`` packets (lab
default 1: every packet, counts exact), agent address = the device's loopback.  Devices named
in ``ipfix`` also run pmacct's ``nfprobe`` (``nfprobe_version: 10``: IPFIX; unsampled flow
records with ingress/egress interface, exported after ``IPFIX_TIMEOUT_S`` idle, from the same
loopback address; Observation Domain = 1000 + the node's number).

Where the datagrams go: a management network that never leaves the lab.  A collector namespace
(``PREFIX + "collector"``) holds a bridge ``export`` with ``COLLECTOR_IP``/24; every exporting
device has a veth ``mgmt`` into it (``MGMT_IF``, 198.18.64.10+S on spine S, 198.18.64.100+L on
leaf L; the bridge ports are isolated, so devices reach the collector and not each other).
Exporters send from their loopback to ``COLLECTOR_IP:port`` (the collector namespace routes each
loopback back over its device's port).  Nothing is announced: BGP only announces its ``network``
statements, so the management /24 stays a connected route of each device.  The collector's
socket is opened *inside* the collector namespace (``anycast_tui.collect.nssocket.udp_socket``)
by whatever process collects — ``monitor`` in the root namespace — which never gets a route or
an address of the lab.  sFlow and IPFIX share the one port: a datagram's first bytes tell them
apart (sFlow: the 32-bit version 5; IPFIX: the 16-bit version 10).

pmacct's sfprobe sends its buffered samples on its one-second tick, which runs when the next
captured packet arrives (else after 60 s idle): with BGP (keepalives every second on every link)
that is about a second; with ``--routing static`` and no traffic, the last samples of a burst
wait for the next packet.

Files: ``STATE_DIR/exporters/DEVICE.conf``, ``.ifmap``, ``.log``, ``.pid`` (core) and
``.pid-sfprobe-…``/``.pid-nfprobe-…`` (plugins).  Every pmacctd process is titled with
``PREFIX + DEVICE`` (core ``core_proc_name``, plugin names), which is how ``down`` and the tests
tell the lab's exporters from any other pmacctd.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import time
from pathlib import Path

from anycast_tui.lab import netns, procs
from anycast_tui.lab.nslab import Node, Topology

PMACCTD = "pmacctd"
COLLECTOR = "collector"  # the collector namespace is PREFIX + this
BRIDGE = "export"
MGMT_IF = "mgmt"
EXPORT_NET = "198.18.64.0/24"
COLLECTOR_IP = "198.18.64.1"
SFLOW_PORT = 6343
IPFIX_TIMEOUT_S = 5  # nfprobe exports a flow once idle this long (and at least every MAX_LIFE_S)
MAX_LIFE_S = 30
SNAPLEN = 128  # bytes of each sampled packet's header (pmacct's default; Ethernet + IPv6 + TCP fit)


def available() -> str | None:
    """None when pmacctd is installed, else why not."""
    if shutil.which(PMACCTD) is None:
        return "pmacct's pmacctd is not installed (apt-get install pmacct)"
    return None


def collector_ns(topo: Topology) -> str:
    return topo.prefix + COLLECTOR


def exporting(topo: Topology) -> list[Node]:
    """The devices that export: every spine and leaf."""
    return topo.role("spine") + topo.role("leaf")


def mgmt_ip(node: Node) -> str:
    if node.role == "spine":
        return f"198.18.64.{10 + node.index}"
    if node.role == "leaf":
        return f"198.18.64.{100 + node.index}"
    raise ValueError(f"{node.name} exports nothing")


def tag(topo: Topology, node: Node) -> str:
    """The name every pmacctd process of ``node`` carries in its title."""
    return topo.prefix + node.name


def fabric_ifs(topo: Topology, node: Node) -> list[str]:
    return [ln.end(node.name)[1] for ln in topo.links_of(node.name)]


# --------------------------------------------------------------------------- network


def create_network(topo: Topology) -> None:
    """The collector namespace, its bridge and one ``mgmt`` veth per exporting device (after ``nslab.create``)."""
    coll = collector_ns(topo)
    nodes = exporting(topo)
    lines = [f"netns add {coll}"]
    lines += [f"link add {MGMT_IF} netns {n.ns} type veth peer name {n.name} netns {coll}" for n in nodes]
    netns.run(None, "ip", "-batch", "-", input="\n".join(lines) + "\n")
    coll_lines = ["link set lo up", f"link add {BRIDGE} type bridge", f"addr add {COLLECTOR_IP}/24 dev {BRIDGE}",
                  f"link set {BRIDGE} up"]
    for n in nodes:
        coll_lines += [f"link set {n.name} master {BRIDGE}", f"link set {n.name} type bridge_slave isolated on",
                       f"link set {n.name} up", f"route add {n.loopback}/32 via {mgmt_ip(n)} dev {BRIDGE}"]
    netns.run(None, "ip", "-n", coll, "-batch", "-", input="\n".join(coll_lines) + "\n")
    for n in nodes:
        netns.run(None, "ip", "-n", n.ns, "-batch", "-",
                  input=f"addr add {mgmt_ip(n)}/24 dev {MGMT_IF}\nlink set {MGMT_IF} up\n")


# --------------------------------------------------------------------------- pmacctd


def run_dir(state_dir: Path) -> Path:
    return state_dir / "exporters"


def ifindexes(node: Node) -> dict[str, int]:
    """Interface name -> kernel ifIndex in the device's namespace."""
    links = json.loads(netns.ip(node.ns, "-j", "link", "show") or "[]")
    return {link["ifname"]: int(link["ifindex"]) for link in links}


def config(topo: Topology, node: Node, d: Path, *, sampling_rate: int, ipfix: bool, port: int = SFLOW_PORT) -> str:
    """pmacctd.conf of one device (keys: pmacct's CONFIG-KEYS)."""
    t = tag(topo, node)
    sf, nf = f"{t}-sflow", f"{t}-ipfix"
    lines = [f"! written by `anycast-tui lab up --sflow` for {node.name}", "daemonize: true",
             f"pidfile: {d / node.name}.pid", f"logfile: {d / node.name}.log", f"core_proc_name: {t}",
             "promisc: false", f"pcap_interfaces_map: {d / node.name}.ifmap", "pcap_ifindex: sys",
             f"snaplen: {SNAPLEN}", f"plugins: sfprobe[{sf}]" + (f", nfprobe[{nf}]" if ipfix else ""),
             f"sfprobe_receiver[{sf}]: {COLLECTOR_IP}:{port}", f"sfprobe_agentip[{sf}]: {node.loopback}",
             f"sfprobe_source_ip[{sf}]: {node.loopback}", f"sfprobe_agentsubid[{sf}]: 0",
             f"sfprobe_direction[{sf}]: out", f"sampling_rate[{sf}]: {sampling_rate}"]
    if ipfix:
        lines += [f"nfprobe_receiver[{nf}]: {COLLECTOR_IP}:{port}", f"nfprobe_version[{nf}]: 10",
                  f"nfprobe_source_ip[{nf}]: {node.loopback}", f"nfprobe_direction[{nf}]: out",
                  f"nfprobe_engine[{nf}]: {observation_domain(node)}",
                  f"nfprobe_timeouts[{nf}]: tcp={IPFIX_TIMEOUT_S}:tcp.rst={IPFIX_TIMEOUT_S}:tcp.fin={IPFIX_TIMEOUT_S}"
                  f":udp={IPFIX_TIMEOUT_S}:icmp={IPFIX_TIMEOUT_S}:general={IPFIX_TIMEOUT_S}:maxlife={MAX_LIFE_S}"
                  ":expint=1",
                  f"aggregate[{nf}]: src_host, dst_host, src_port, dst_port, proto, tos, tcpflags, in_iface, out_iface"]
    return "\n".join(lines) + "\n"


def observation_domain(node: Node) -> int:
    return 1000 + (node.index if node.role == "spine" else 100 + node.index)


def start(topo: Topology, state_dir: Path, *, sampling_rate: int = 1, ipfix: tuple[str, ...] = (),
          port: int = SFLOW_PORT, timeout_s: float = 30.0) -> None:
    """Write each device's configuration and start its pmacctd; return once every one captures on every fabric
    interface (raises RuntimeError naming the device and its log's last error otherwise)."""
    d = run_dir(state_dir)
    d.mkdir(parents=True, exist_ok=True, mode=0o700)
    nodes = exporting(topo)
    procs = []
    for n in nodes:
        idx = ifindexes(n)
        (d / f"{n.name}.ifmap").write_text("".join(f"ifindex={idx[i]} ifname={i} direction=out\n"
                                                   for i in fabric_ifs(topo, n)))
        (d / f"{n.name}.conf").write_text(config(topo, n, d, sampling_rate=sampling_rate, ipfix=n.name in ipfix,
                                                 port=port))
        argv = ["ip", "netns", "exec", n.ns, PMACCTD, "-f", str(d / f"{n.name}.conf")]
        procs.append((n, subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                          stderr=subprocess.PIPE, cwd="/")))
    for n, p in procs:  # the foreground process exits once pmacctd has forked (daemonize)
        _, err = p.communicate(timeout=60)
        if p.returncode:
            raise RuntimeError(f"pmacctd on {n.name}: exit {p.returncode}: "
                               f"{' '.join(err.decode(errors='replace').split())[:300]}")
    deadline = time.monotonic() + timeout_s
    for n in nodes:
        while (why := _not_ready(topo, n, d, n.name in ipfix)) is not None:
            if time.monotonic() > deadline:
                raise RuntimeError(f"pmacctd on {n.name} did not start: {why}")
            time.sleep(0.05)


def _not_ready(topo: Topology, node: Node, d: Path, ipfix: bool) -> str | None:
    log = _read(d / f"{node.name}.log")
    for i in fabric_ifs(topo, node):
        if f"[{i}," not in log:  # pmacct logs "[IFNAME,IFINDEX] link type is: 1" once it captures on it
            return last_error(log) or f"not capturing on {i} yet"
    missing = [p for p in pid_files(topo, node, d, ipfix) if procs.read_pid(p) is None]
    return f"no {missing[0].name}" if missing else None


def pid_files(topo: Topology, node: Node, d: Path, ipfix: bool) -> list[Path]:
    t = tag(topo, node)
    out = [d / f"{node.name}.pid", d / f"{node.name}.pid-sfprobe-{t}-sflow"]
    if ipfix:
        out.append(d / f"{node.name}.pid-nfprobe-{t}-ipfix")
    return out


def _read(p: Path) -> str:
    try:
        return p.read_text(errors="replace")
    except OSError:
        return ""


def last_error(log: str) -> str:
    """The last ERROR/WARN line of a pmacct log, without its time stamp ('' if none)."""
    for line in reversed(log.splitlines()):
        if " ERROR " in line or " WARN " in line:
            return " ".join(line.split(" ", 1)[-1].split())[:200]
    return ""


def status(topo: Topology, state_dir: Path, ipfix: tuple[str, ...]) -> dict[str, str]:
    """Per exporting device: ``running`` or ``not running: WHY`` (one line)."""
    d = run_dir(state_dir)
    out = {}
    for n in exporting(topo):
        t = tag(topo, n)
        dead = []
        for p in pid_files(topo, n, d, n.name in ipfix):
            pid = procs.read_pid(p)
            if pid is None or not procs.alive(pid, t):
                dead.append("core" if p.name.endswith(".pid") else p.name.split("-")[1])
        if not dead:
            out[n.name] = "running"
        else:
            why = last_error(_read(d / f"{n.name}.log"))
            out[n.name] = f"not running: pmacctd {', '.join(dead)} exited" + (f" (log: {why})" if why else "")
    return out


def stop(prefix: str, state_dir: Path) -> list[int]:
    """Stop every pmacctd of the lab with ``prefix`` (cores first, then any plugin left); the pids signalled."""
    d = run_dir(state_dir)
    signalled = []
    for p in sorted(d.glob("*.pid"), key=str) + sorted(d.glob("*.pid-*"), key=str):
        pid = procs.read_pid(p)
        if pid is not None and procs.kill(pid, prefix + p.name.split(".pid")[0]):
            signalled.append(pid)
    return signalled
