"""The lab's life cycle: up, fail / restore / drain, status, traffic services, down.

State lives in one directory (default ``/run/anycast-tui/<prefix>``): ``state.json``
(what was built, what is down), SSH keys and daemon, FRR configs and pid files,
traffic-service pid files.  ``down`` needs nothing but the prefix: it kills
the processes this lab started (by pid, after checking their command line),
deletes every namespace with the prefix and removes the files it wrote.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from anycast_tui.lab import exporters, frr, labssh, netns, nslab, procs
from anycast_tui.lab.nslab import ANYCAST, CLIENT_NET, Down, Topology

STATE_ROOT = Path("/run/anycast-tui")
INVENTORY_MARK = "# written by `anycast-tui lab up`"


class LabError(RuntimeError):
    """One line for the user."""


@dataclass
class LabConfig:
    spines: int = 2
    leaves: int = 4
    routing: str = "bgp"  # bgp | static
    resilient: bool = False
    seed: int = 1
    prefix: str = nslab.LAB_PREFIX
    state_dir: str = ""
    inventory: str = "config/lab.toml"
    poll_interval_s: float = 1.0
    user: str = "lab"
    down_devices: list[str] = field(default_factory=list)
    down_links: list[str] = field(default_factory=list)
    drained: list[str] = field(default_factory=list)
    ports: dict[str, int] = field(default_factory=dict)
    leaf_servers: list[int] = field(default_factory=list)  # servers per leaf (static routing); empty: one each
    nohash_error: str | None = None  # why the client's tc program could not be attached (TCP then unpredictable)
    sflow: bool = False  # pmacctd exporters on the spines and leaves (exporters.py)
    sampling_rate: int = 1  # sFlow: 1 in N packets
    ipfix: list[str] = field(default_factory=lambda: ["spine01"])  # devices that also export IPFIX (with sflow)
    flow_port: int = exporters.SFLOW_PORT  # the collector's UDP port (sFlow and IPFIX)

    @property
    def down(self) -> Down:
        return Down(frozenset(self.down_devices), frozenset(self.down_links), frozenset(self.drained))


def default_state_dir(prefix: str) -> Path:
    return STATE_ROOT / prefix.rstrip("-")


def state_dir_pointer(prefix: str) -> Path:
    """The file where ``up`` names the state dir of the lab with ``prefix`` when it is not the default one (so
    ``down`` finds it without --state-dir); ``down`` removes it.  It need not exist."""
    return STATE_ROOT / f"{prefix.rstrip('-')}.statedir"


def locate(prefix: str, state_dir: Path | None = None) -> Path:
    """The state dir of the lab with ``prefix``: as given, else as recorded by ``up``, else the default."""
    if state_dir is not None:
        return state_dir
    try:
        return Path(state_dir_pointer(prefix).read_text().strip())
    except OSError:
        return default_state_dir(prefix)


def preflight(routing: str, sflow: bool = False) -> None:
    why = netns.available()
    if why:
        raise LabError(why)
    if routing == "bgp" and frr.available():
        raise LabError(f"--routing bgp: {frr.available()}")
    if sflow and exporters.available():
        raise LabError(f"--sflow: {exporters.available()}")


class Lab:
    def __init__(self, cfg: LabConfig):
        self.cfg = cfg
        self.state_dir = Path(cfg.state_dir)
        self.topo: Topology = nslab.build_topology(cfg.spines, cfg.leaves, prefix=cfg.prefix, seed=cfg.seed,
                                                   leaf_servers=tuple(cfg.leaf_servers))

    @property
    def frr_dir(self) -> Path:
        return frr.run_dir(self.cfg.prefix)

    # ------------------------------------------------------------------ persistence

    @classmethod
    def load(cls, prefix: str = nslab.LAB_PREFIX, state_dir: Path | None = None) -> "Lab":
        sd = locate(prefix, state_dir)
        try:
            data = json.loads((sd / "state.json").read_text())
        except (OSError, ValueError):
            raise LabError(f"no lab is up with prefix {prefix!r} (no {sd / 'state.json'})") from None
        return cls(LabConfig(**data))

    def save(self) -> None:
        tmp = self.state_dir / "state.json.tmp"
        tmp.write_text(json.dumps(asdict(self.cfg), indent=1))
        tmp.replace(self.state_dir / "state.json")

    # ------------------------------------------------------------------ up

    @classmethod
    def up(cls, cfg: LabConfig) -> "Lab":
        preflight(cfg.routing, cfg.sflow)
        if cfg.leaf_servers and cfg.routing == "bgp":
            raise LabError("uneven leaves (--servers) need --routing static (the FRR set-up has one server per leaf)")
        if cfg.resilient and cfg.routing == "bgp":
            raise LabError("--resilient needs --routing static (FRR 8.4 cannot install BGP routes "
                           "into resilient nexthop groups)")
        if cfg.sflow:
            cls._check_sflow(cfg)
        cfg.state_dir = str(Path(cfg.state_dir).resolve()) if cfg.state_dir else str(default_state_dir(cfg.prefix))
        cfg.inventory = str(Path(cfg.inventory).resolve())
        lab = cls(cfg)
        if netns.list_namespaces(cfg.prefix) or (lab.state_dir / "state.json").exists():
            raise LabError(f"a lab with prefix {cfg.prefix!r} is already up (or crashed): run `anycast-tui lab down`")
        lab._check_inventory_path()
        lab.state_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        lab.save()  # first, so that `down` can clean up after a crash below
        if lab.state_dir != default_state_dir(cfg.prefix):
            STATE_ROOT.mkdir(parents=True, exist_ok=True)
            state_dir_pointer(cfg.prefix).write_text(str(lab.state_dir.resolve()))
        try:
            nslab.create(lab.topo)
            lab._apply_routes(None)
            nohash = lab._nohash()  # these two start in the background while FRR starts
            vty = {n.name: str(frr.node_dir(lab.frr_dir, n)) for n in frr.bgp_nodes(lab.topo)} \
                if cfg.routing == "bgp" else {}
            labssh.prepare(lab.state_dir, [(n.name, n.ns) for n in lab.topo.nodes.values()], vty)
            sshd = labssh.spawn(lab.state_dir)
            if cfg.routing == "bgp":
                frr.start(lab.topo, lab.frr_dir)
            if cfg.sflow:
                exporters.create_network(lab.topo)
                exporters.start(lab.topo, lab.state_dir, sampling_rate=cfg.sampling_rate, ipfix=tuple(cfg.ipfix),
                                port=cfg.flow_port)
            _, err = nohash.communicate(timeout=60)
            if nohash.returncode:  # the lab still works; only locally generated TCP is hashed by its txhash
                cfg.nohash_error = " ".join(err.split())[-300:] or f"exit {nohash.returncode}"
            cfg.ports = labssh.wait_ports(lab.state_dir, sshd)
            lab.save()
            lab.write_inventory()
            if cfg.routing == "bgp":
                lab.wait_converged()
        except BaseException:
            down(cfg.prefix, lab.state_dir)
            raise
        return lab

    @staticmethod
    def _check_sflow(cfg: LabConfig) -> None:
        if not 1 <= cfg.sampling_rate <= 1_000_000:
            raise LabError(f"--sampling-rate {cfg.sampling_rate}: expected 1..1000000 (1 in N packets)")
        if not 1 <= cfg.flow_port <= 65535:
            raise LabError(f"flow export port {cfg.flow_port}: expected 1..65535")
        topo = nslab.build_topology(cfg.spines, cfg.leaves, prefix=cfg.prefix, seed=cfg.seed)
        names = {n.name for n in exporters.exporting(topo)}
        bad = [d for d in cfg.ipfix if d not in names]
        if bad:
            raise LabError(f"--ipfix {','.join(bad)}: not a spine or leaf of this lab")

    def _apply_routes(self, before: Down | None) -> None:
        want = nslab.desired_routes(self.topo, self.cfg.down)
        old = nslab.desired_routes(self.topo, before) if before is not None else None
        if self.cfg.routing == "bgp":  # only the client-facing static part; FRR does the rest
            want = _client_part(want)
            old = _client_part(old) if old is not None else None
        nslab.apply_routes(self.topo, want, old, resilient=self.cfg.resilient)

    def _nohash(self) -> subprocess.Popen[str]:
        """Attach the hash-clearing tc program to the client's egress (see traffic.py); runs in the background."""
        client = self.topo.node("client")
        ifs = [ln.end("client")[1] for ln in self.topo.links_of("client")]
        return subprocess.Popen(["ip", "netns", "exec", client.ns, *py_argv("anycast_tui.lab.traffic", "nohash", *ifs)],
                                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)

    def anycast_paths(self, spine: str) -> int:
        """Next hops of a spine's anycast route, as the kernel has it now."""
        out = netns.ip(self.topo.node(spine).ns, "-j", "route", "show", f"{ANYCAST}/32", check=False)
        routes = json.loads(out or "[]")
        if not routes:
            return 0
        r = routes[0]
        if "nhid" in r:
            nh = json.loads(netns.ip(self.topo.node(spine).ns, "-j", "nexthop", "show", "id", str(r["nhid"])) or "[]")
            return len(nh[0].get("group", [])) or 1 if nh else 0
        return len(r.get("nexthops", [])) or 1

    def expected_paths(self) -> dict[str, int]:
        """Per live spine, how many next hops its anycast route should have now."""
        want = nslab.desired_routes(self.topo, self.cfg.down)
        return {s.name: len(want[s.name].get(f"{ANYCAST}/32", ())) for s in self.topo.role("spine") if s.name in want}

    def wait_converged(self, timeout_s: float = 30.0) -> float:
        """Wait until every live spine's anycast route has the expected next hops; returns seconds."""
        t0 = time.monotonic()
        want = self.expected_paths()
        while True:
            got = {s: self.anycast_paths(s) for s in want}
            if got == want:
                return time.monotonic() - t0
            if time.monotonic() - t0 > timeout_s:
                raise LabError(f"routing did not converge in {timeout_s:.0f} s: anycast paths {got}, want {want}")
            time.sleep(0.1)

    # ------------------------------------------------------------------ inventory

    def _check_inventory_path(self) -> None:
        path = Path(self.cfg.inventory)
        if path.exists() and INVENTORY_MARK not in path.read_text(errors="replace")[:200]:
            raise LabError(f"{path} exists and was not written by `lab up`; pass --config elsewhere")

    def write_inventory(self) -> Path:
        """config/lab.toml: the collector's inventory (anycast_tui.collect.inventory format) plus the lab's hash seeds."""
        self._check_inventory_path()
        path = Path(self.cfg.inventory)
        path.parent.mkdir(parents=True, exist_ok=True)
        kh = self.state_dir / "known_hosts"
        kh.write_text(labssh.known_hosts(self.state_dir, self.cfg.ports))
        lines = [INVENTORY_MARK + f" (prefix {self.cfg.prefix}); `lab down` removes it.", "",
                 "[fabric]", f"poll_interval_s = {self.cfg.poll_interval_s}", f'anycast_prefixes = ["{ANYCAST}/32"]',
                 f'lab_prefix = "{self.cfg.prefix}"', f'lab_routing = "{self.cfg.routing}"',
                 f"lab_resilient = {'true' if self.cfg.resilient else 'false'}", "",
                 "[fabric.lab_hash]  # per device: net.ipv4.fib_multipath_hash_policy and _seed"]
        for n in self.topo.nodes.values():
            lines.append(f"{n.name} = {{ policy = 1, seed = {n.seed} }}")
        lines += ["", "[defaults]", f'user = "{self.cfg.user}"', f'key_path = "{self.state_dir / "id_ed25519"}"',
                  f'known_hosts = "{kh}"', 'platform = "linux"']
        known = _inventory_keys()
        lines += [f"{k} = false" for k in ("use_ssh_config", "use_agent") if k in known]  # hermetic: lab key only
        lines.append("")
        sflow = self.cfg.sflow and "sflow_agent" in known
        if sflow:
            lines += [f"[flow_export]  # sFlow (1 in {self.cfg.sampling_rate}) from every spine and leaf, IPFIX from "
                      f"{', '.join(self.cfg.ipfix) or 'none'}",
                      f'listen = "{exporters.COLLECTOR_IP}:{self.cfg.flow_port}"',
                      f'namespace = "{exporters.collector_ns(self.topo)}"  # the socket is opened in there',
                      "window_s = 300", ""]
        exporting = {n.name for n in exporters.exporting(self.topo)}
        for n in self.topo.nodes.values():
            lines += ["[[device]]", f'name = "{n.name}"', f'role = "{n.role}"', 'host = "127.0.0.1"',
                      f"port = {self.cfg.ports[n.name]}"]
            if sflow and n.name in exporting:
                lines.append(f'sflow_agent = "{n.loopback}"  # its exporters\' address (agent, IPFIX source)')
            if n.role == "server" and "flow_sources" in known:
                lines.append('flow_sources = ["ss"]  # live flows of the anycast service')
            if self.cfg.routing == "bgp" and n.role != "client":
                lines.append('platform = "frr"  # its FRR RIB and BGP multipath state too (vtysh)')
            lines.append("")
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text("\n".join(lines))
        tmp.replace(path)
        return path

    # ------------------------------------------------------------------ events

    def _resolve(self, target: str) -> tuple[str, str]:
        """('device', name) or ('link', canonical link name)."""
        if target in self.topo.nodes:
            if target == "client":
                raise LabError("the client cannot fail (it is the traffic source)")
            return "device", target
        try:
            return "link", self.topo.link(target).name
        except KeyError:
            raise LabError(f"no device or link {target!r} (devices: spine01.., leaf01.., server01..; "
                           "links: spine01-leaf03, leaf03-server03, spine01-client)") from None

    def fail(self, target: str) -> None:
        kind, name = self._resolve(target)
        before = self.cfg.down
        if kind == "device":
            if name in self.cfg.down_devices:
                raise LabError(f"{name} is already failed")
            nslab.set_links(self.topo, name, False)
            self.cfg.down_devices.append(name)
        else:
            if name in self.cfg.down_links:
                raise LabError(f"{name} is already failed")
            ln = self.topo.link(name)
            for end in (ln.a, ln.b):
                if end not in self.cfg.down_devices:
                    nslab.set_links(self.topo, end, False, only=[ln.end(end)[1]])
            self.cfg.down_links.append(name)
        self._apply_routes(before)
        self.save()

    def restore(self, target: str) -> None:
        kind, name = self._resolve(target)
        before = self.cfg.down
        if kind == "device" and name in self.cfg.drained:
            if self.cfg.routing == "bgp":
                frr.set_announce(self.frr_dir, self.topo.node(name), True)
            self.cfg.drained.remove(name)
        elif kind == "device":
            if name not in self.cfg.down_devices:
                raise LabError(f"{name} is neither failed nor drained")
            self.cfg.down_devices.remove(name)
            failed_links = {self.topo.link(x) for x in self.cfg.down_links}
            ifs = [ln.end(name)[1] for ln in self.topo.links_of(name) if ln not in failed_links]
            nslab.set_links(self.topo, name, True, only=ifs)
        else:
            if name not in self.cfg.down_links:
                raise LabError(f"{name} is not failed")
            self.cfg.down_links.remove(name)
            ln = self.topo.link(name)
            for end in (ln.a, ln.b):
                if end not in self.cfg.down_devices:
                    nslab.set_links(self.topo, end, True, only=[ln.end(end)[1]])
        self._apply_routes(before)
        self.save()

    def drain(self, server: str) -> None:
        if server not in self.topo.nodes or self.topo.node(server).role != "server":
            raise LabError(f"{server!r} is not a server of this lab")
        if server in self.cfg.drained:
            raise LabError(f"{server} is already drained")
        before = self.cfg.down
        if self.cfg.routing == "bgp":
            frr.set_announce(self.frr_dir, self.topo.node(server), False)
        self.cfg.drained.append(server)
        self._apply_routes(before)
        self.save()

    # ------------------------------------------------------------------ traffic

    def start_services(self) -> None:
        """Start the answering service on every server (once)."""
        for srv in self.topo.role("server"):
            pf = self.state_dir / "traffic" / f"{srv.name}.pid"
            if pf.exists() and _alive(int(pf.read_text()), "anycast_tui.lab.traffic"):
                continue
            pf.parent.mkdir(parents=True, exist_ok=True)
            p = subprocess.Popen(["ip", "netns", "exec", srv.ns, *py_argv("anycast_tui.lab.traffic", "serve", srv.name)],
                                 stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                 start_new_session=True, cwd="/")
            pf.write_text(str(p.pid))
        # wait until each answers locally (bounded)
        deadline = time.monotonic() + 10
        for srv in self.topo.role("server"):
            while netns.run(srv.ns, "ss", "-ltnH", f"sport = :{_traffic_port()}", check=False).stdout.strip() == "":
                if time.monotonic() > deadline:
                    raise LabError(f"traffic service did not start on {srv.name}")
                time.sleep(0.05)

    def client_argv(self, rounds: int) -> list[str]:
        """argv of the traffic client in the client namespace (flows as JSON on its stdin)."""
        return ["ip", "netns", "exec", self.topo.node("client").ns,
                *py_argv("anycast_tui.lab.traffic", "client", "--rounds", str(rounds))]

    # ------------------------------------------------------------------ status

    def status(self) -> dict:
        present = set(netns.list_namespaces(self.cfg.prefix))
        pid = _read_pid(self.state_dir / "labssh.pid")
        out: dict = {
            "prefix": self.cfg.prefix, "routing": self.cfg.routing, "resilient": self.cfg.resilient,
            "size": f"{self.cfg.spines}x{self.cfg.leaves}", "inventory": self.cfg.inventory,
            "ssh_daemon": bool(pid and _alive(pid, "anycast_tui.lab.labssh")),
            "client_tc_nohash": self.cfg.nohash_error or "attached",
            "sflow": ({"collector": f"{exporters.COLLECTOR_IP}:{self.cfg.flow_port}",
                       "namespace": exporters.collector_ns(self.topo), "sampling_rate": self.cfg.sampling_rate,
                       "ipfix": self.cfg.ipfix} if self.cfg.sflow else None),
            "down": {"devices": self.cfg.down_devices, "links": self.cfg.down_links, "drained": self.cfg.drained},
            "devices": {},
        }
        exporter_state = exporters.status(self.topo, self.state_dir, tuple(self.cfg.ipfix)) if self.cfg.sflow else {}
        for n in self.topo.nodes.values():
            d: dict = {"namespace": n.ns in present, "role": n.role, "seed": n.seed,
                       "ssh_port": self.cfg.ports.get(n.name)}
            if n.ns in present:
                d["routes"] = len(json.loads(netns.ip(n.ns, "-j", "route", "show", check=False) or "[]"))
            if n.role == "spine" and n.ns in present:
                d["anycast_paths"] = self.anycast_paths(n.name)
            if self.cfg.sflow and n.name in exporter_state:
                d["exporter"] = exporter_state[n.name]
            if self.cfg.routing == "bgp" and n.role != "client" and n.ns in present:
                try:
                    up, total = frr.sessions(self.frr_dir, n)
                    d["bgp"] = f"{up}/{total}"
                except (RuntimeError, ValueError, subprocess.TimeoutExpired) as exc:
                    d["bgp"] = f"error: {exc}"
            out["devices"][n.name] = d
        return out


def _inventory_keys() -> set[str]:
    """Device keys the collector's inventory understands (it grows; unknown keys are errors there)."""
    from anycast_tui.collect.inventory import DeviceConfig

    return set(DeviceConfig.__dataclass_fields__)


def py_argv(module: str, *args: str) -> list[str]:
    """argv running ``python3 -m module`` from this source tree (works without installing the package)."""
    root = str(Path(__file__).resolve().parents[2])
    return ["env", f"PYTHONPATH={root}", sys.executable, "-m", module, *args]


def _client_part(routes: dict[str, dict[str, nslab.Paths]]) -> dict[str, dict[str, nslab.Paths]]:
    keep = {CLIENT_NET, "198.18.3.1/32"}
    out: dict[str, dict[str, nslab.Paths]] = {}
    for dev, r in routes.items():
        if dev == "client":
            out[dev] = dict(r)
        elif dev.startswith("spine"):
            out[dev] = {p: v for p, v in r.items() if p in keep}
    return out


def _traffic_port() -> int:
    from anycast_tui.lab.traffic import PORT

    return PORT


_read_pid = procs.read_pid
_alive = procs.alive


def _kill(pid: int, marker: str) -> None:
    procs.kill(pid, marker)


def down(prefix: str = nslab.LAB_PREFIX, state_dir: Path | None = None) -> list[str]:
    """Remove everything a lab with ``prefix`` made; safe to run twice, and after a crashed ``up``."""
    sd = locate(prefix, state_dir)
    inventory: str | None = None
    try:
        inventory = json.loads((sd / "state.json").read_text()).get("inventory")
    except (OSError, ValueError):
        pass
    pid = _read_pid(sd / "labssh.pid")
    if pid:
        _kill(pid, "anycast_tui.lab.labssh")
    for pf in sorted((sd / "traffic").glob("*.pid")):
        p = _read_pid(pf)
        if p:
            _kill(p, "anycast_tui.lab.traffic")
    for p in frr.pids(frr.run_dir(prefix)):
        _kill(p, "/usr/lib/frr/")
    exporters.stop(prefix, sd)
    removed = nslab.destroy(prefix)  # also kills anything left inside
    shutil.rmtree(frr.run_dir(prefix), ignore_errors=True)
    if inventory:
        ip = Path(inventory)
        try:
            if INVENTORY_MARK in ip.read_text(errors="replace")[:200]:
                ip.unlink()
        except OSError:
            pass
        Path(str(ip) + ".tmp").unlink(missing_ok=True)
    if sd.exists() and (sd / "state.json").exists() or sd == default_state_dir(prefix):
        shutil.rmtree(sd, ignore_errors=True)
    state_dir_pointer(prefix).unlink(missing_ok=True)
    for d in (frr.run_dir(prefix).parent, STATE_ROOT):  # only when nothing else lives there
        try:
            d.rmdir()
        except OSError:
            pass
    return removed

