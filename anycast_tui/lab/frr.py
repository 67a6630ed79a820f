"""FRR (zebra + bgpd) per lab namespace: configuration and daemon control.

eBGP as in RFC 7938: spines share AS 65000, leaf L is 65100+L, server L is
65200+L.  Every server announces 192.0.2.53/32 (routing on the host); leaves
and spines run multipath (``as-path multipath-relax``, ``maximum-paths 64``),
with 1 s keepalives / 3 s hold and 1 s connect retry so failures converge in
seconds.  Spines announce the client's 203.0.113.0/24 (a kernel route the lab
installs).  The client runs no FRR (static default route).

Each daemon runs inside its namespace as user ``frr`` with every path in the
lab's FRR run dir (``RUN_DIR/<device>/``, owned by frr, reachable by frr even
when the lab's state dir is not): no system service, no /etc/frr, no TCP vty.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from pathlib import Path

from anycast_tui.lab.nslab import ANYCAST, CLIENT_NET, Node, Topology

FRR_DIR = Path("/usr/lib/frr")
SPINE_AS = 65000


def available() -> str | None:
    """None when FRR's zebra, bgpd and vtysh are installed, else why not."""
    for p in (FRR_DIR / "zebra", FRR_DIR / "bgpd"):
        if not os.access(p, os.X_OK):
            return f"FRR is not installed ({p} missing; apt-get install frr)"
    if shutil.which("vtysh") is None:
        return "FRR's vtysh is missing (apt-get install frr)"
    return None


def asn(node: Node) -> int:
    if node.role == "spine":
        return SPINE_AS
    if node.role == "leaf":
        return 65100 + node.index
    if node.role == "server":
        return 65200 + node.index
    raise ValueError(f"{node.name} runs no BGP")


def bgp_nodes(topo: Topology) -> list[Node]:
    return [n for n in topo.nodes.values() if n.role != "client"]


def networks(topo: Topology, node: Node, *, drained: bool = False) -> list[str]:
    nets = [f"{node.loopback}/32"]
    if node.role == "spine":
        nets += [CLIENT_NET, "198.18.3.1/32"]
    if node.role == "server" and not drained:
        nets.append(f"{ANYCAST}/32")
    return nets


def bgpd_conf(topo: Topology, node: Node, *, drained: bool = False) -> str:
    lines = ["frr defaults datacenter", f"hostname {node.name}", "!",
             f"router bgp {asn(node)}", f" bgp router-id {node.loopback}", " no bgp ebgp-requires-policy",
             " no bgp network import-check", " bgp bestpath as-path multipath-relax", " timers bgp 1 3"]
    nbrs = []
    for ln in topo.links_of(node.name):
        _, peer, peer_ip = ln.end(node.name)
        if peer == "client":
            continue
        nbrs.append(peer_ip)
        lines += [f" neighbor {peer_ip} remote-as {asn(topo.node(peer))}", f" neighbor {peer_ip} timers connect 1",
                  f" neighbor {peer_ip} advertisement-interval 0"]
        if ln.a == node.name:  # the upper end waits: no connection collisions, sessions come up sooner
            lines.append(f" neighbor {peer_ip} passive")
    lines.append(" address-family ipv4 unicast")
    lines += [f"  network {n}" for n in networks(topo, node, drained=drained)]
    lines += ["  maximum-paths 64", " exit-address-family", "exit", ""]
    return "\n".join(lines)


def zebra_conf(node: Node) -> str:
    # Plain multipath routes, not kernel nexthop objects: FRR 8.4 keeps believing a
    # group is whole after the kernel flushed members on carrier loss, and never
    # puts them back on restore.
    return f"hostname {node.name}\nno zebra nexthop kernel enable\n!\n"


def run_dir(prefix: str) -> Path:
    """Where a lab's FRR daemons keep configs, pid files and sockets."""
    return Path("/run/anycast-tui/frr") / prefix.rstrip("-")


def node_dir(rundir: Path, node: Node) -> Path:
    return rundir / node.name


def _daemon(rundir: Path, node: Node, daemon: str) -> list[str]:
    d = node_dir(rundir, node)
    argv = ["ip", "netns", "exec", node.ns, str(FRR_DIR / daemon), "-d", "-f", str(d / f"{daemon}.conf"),
            "-i", str(d / f"{daemon}.pid"), "-z", str(d / "zserv.api"), "--vty_socket", str(d),
            "-u", "frr", "-g", "frr", "-P", "0", "--log", f"file:{d / (daemon + '.log')}"]
    return argv


def start(topo: Topology, rundir: Path, timeout_s: float = 20.0) -> None:
    """Write configs and start zebra, then bgpd, in every BGP namespace (``rundir``: see :func:`run_dir`)."""
    nodes = bgp_nodes(topo)
    for n in nodes:
        d = node_dir(rundir, n)
        d.mkdir(parents=True, exist_ok=True)
        (d / "zebra.conf").write_text(zebra_conf(n))
        (d / "bgpd.conf").write_text(bgpd_conf(topo, n))
        for p in (d, d / "zebra.conf", d / "bgpd.conf"):
            shutil.chown(p, "frr", "frr")
    for p in (rundir, *rundir.parents[:2]):  # the daemons run as user frr and must reach their dirs
        if str(p).startswith("/run/anycast-tui"):
            os.chmod(p, 0o711)
    _spawn([_daemon(rundir, n, "zebra") for n in nodes])
    _wait([node_dir(rundir, n) / "zserv.api" for n in nodes], timeout_s, "zebra")
    _spawn([_daemon(rundir, n, "bgpd") for n in nodes])
    _wait([node_dir(rundir, n) / "bgpd.pid" for n in nodes], timeout_s, "bgpd")


def _spawn(argvs: list[list[str]]) -> None:
    procs = [subprocess.Popen(a, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
             for a in argvs]
    for a, p in zip(argvs, procs):
        _, err = p.communicate(timeout=30)
        if p.returncode != 0:
            raise RuntimeError(f"{Path(a[4]).name} in {a[3]} failed: {err.decode(errors='replace').strip()[:300]}")


def _wait(paths: list[Path], timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if all(p.exists() for p in paths):
            return
        time.sleep(0.02)
    missing = [p.parent.name for p in paths if not p.exists()]
    raise RuntimeError(f"{what} did not start on {', '.join(missing)}")


def pids(rundir: Path) -> list[int]:
    """Pids of every FRR daemon this lab started (from its pid files)."""
    out = []
    for pf in sorted(rundir.glob("*/*.pid")):
        try:
            out.append(int(pf.read_text().split()[0]))
        except (OSError, ValueError, IndexError):
            pass
    return out


def vtysh(rundir: Path, node: Node, *commands: str, timeout: float = 10.0) -> str:
    argv = ["vtysh", "--vty_socket", str(node_dir(rundir, node))]
    for c in commands:
        argv += ["-c", c]
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=timeout)
    if proc.returncode != 0:
        raise RuntimeError(f"vtysh on {node.name}: {(proc.stderr or proc.stdout).strip()[:300]}")
    return proc.stdout


def set_announce(rundir: Path, node: Node, announce: bool) -> None:
    """A server withdraws (drain) or announces again the anycast /32."""
    no = "" if announce else "no "
    vtysh(rundir, node, "configure terminal", f"router bgp {asn(node)}", "address-family ipv4 unicast",
          f"{no}network {ANYCAST}/32")


def sessions(rundir: Path, node: Node) -> tuple[int, int]:
    """(established, configured) BGP sessions of one device."""
    import json

    out = vtysh(rundir, node, "show bgp ipv4 unicast summary json")
    peers = (json.loads(out or "{}").get("peers") or {})
    up = sum(1 for p in peers.values() if p.get("state") == "Established")
    return up, len(peers)
