"""Health checks on the real lab (network namespaces, real kernels, real SSH into each): a clean lab gives no
findings; seed 0 on a spine is found and clears when fixed; the same seed on the client router and the spines
polarizes the spines — ``check`` says which leaves a spine starves, and ``ip route get`` on the real spines
sends none of the flows that reach them there.  Root; run alone, under ``flock /tmp/anycast-ns.lock``."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
import pytest

from anycast_tui.lab.labctl import Lab
from anycast_tui.model.flows import synthetic_flows

ROOT = Path(__file__).resolve().parents[2]
CLI = [sys.executable, "-c", "import sys; from anycast_tui.cli import main; sys.exit(main())"]
ANY = "192.0.2.53/32"


@pytest.fixture(scope="module")
def lab(static_lab: Lab) -> Lab:
    return static_lab


def _check(lab: Lab, *args: str) -> tuple[int, dict]:
    proc = subprocess.run([*CLI, "check", "-c", lab.cfg.inventory, "--json", *args], cwd=ROOT, capture_output=True,
                          text=True, timeout=180, stdin=subprocess.DEVNULL)
    assert proc.returncode in (0, 1), proc.stderr
    return proc.returncode, json.loads(proc.stdout)


def _seed(lab: Lab, name: str, seed: int) -> None:
    subprocess.run(["ip", "netns", "exec", lab.topo.node(name).ns, "sysctl", "-q", "-w",
                    f"net.ipv4.fib_multipath_hash_seed={seed}"], check=True, timeout=30)


def _route_get(lab: Lab, name: str, lines: list[str]) -> list[str]:
    """``ip -batch`` of ``route get`` lines in ``name``'s namespace: the device (interface = neighbour) of each."""
    proc = subprocess.run(["ip", "-n", lab.topo.node(name).ns, "-batch", "-"], input="".join(f"{x}\n" for x in lines),
                          capture_output=True, text=True, timeout=120, check=True)
    out = [ln.split(" dev ")[1].split()[0] for ln in proc.stdout.splitlines() if " dev " in ln]
    assert len(out) == len(lines), proc.stdout
    return out


def test_a_clean_lab_has_no_findings(lab: Lab):
    code, doc = _check(lab, "--fail-on", "warning")
    assert code == 0 and doc["findings"] == [], doc["findings"]
    assert doc["answered"] == len(lab.topo.nodes)


def test_seed_zero_on_a_spine_is_found_and_clears(lab: Lab):
    seed = lab.topo.node("spine01").seed
    _seed(lab, "spine01", 0)
    try:
        code, doc = _check(lab)
        found = [(f["rule"], f["subject"]) for f in doc["findings"]]
        assert ("seed-zero", "spine01") in found and code == 0  # a warning: passes the default --fail-on error
        assert next(r for r in doc["hash_settings"] if r["device"] == "spine01")["seed"] == 0
    finally:
        _seed(lab, "spine01", seed)
    code, doc = _check(lab, "--fail-on", "warning")
    assert code == 0 and doc["findings"] == []


def test_same_seed_on_client_and_spines_polarizes_the_spines_for_real(lab: Lab):
    seeds = {n: lab.topo.node(n).seed for n in ("client", "spine01", "spine02")}
    for n in seeds:
        _seed(lab, n, 4242)
    try:
        code, doc = _check(lab)
        found = {(f["rule"], f["subject"]) for f in doc["findings"]}
        assert {("polarized", f"spine01 {ANY}"), ("polarized", f"spine02 {ANY}"),
                ("same-seed-consecutive-tiers", "spine01"), ("same-seed-consecutive-tiers", "spine02")} <= found
        starved = {}
        for sp in doc["spreads"]:
            if sp["device"] in ("spine01", "spine02"):
                starved[sp["device"]] = {hop for hop, share in sp["shares"] if share == 0.0}
                assert starved[sp["device"]], sp  # the client's hash already chose: half the leaves get nothing
        # the real kernels: the client picks a spine per flow, that spine a leaf; none lands on a starved leaf
        flows = synthetic_flows(200, 300, dst="192.0.2.53")
        asks = []
        for i in range(len(flows)):
            f = flows.flow(i)
            proto = "tcp" if f.proto == 6 else "udp"
            asks.append((f, f"route get {f.dst} from {f.src} ipproto {proto} sport {f.sport} dport {f.dport}"))
        spines = _route_get(lab, "client", [a for _, a in asks])
        seen: dict[str, set[str]] = {"spine01": set(), "spine02": set()}
        for spine in seen:
            mine = [(f, a) for (f, a), s in zip(asks, spines) if s == spine]
            assert mine
            leaves = _route_get(lab, spine, [f"{a} iif client" for _, a in mine])
            seen[spine] = set(leaves)
            assert not seen[spine] & starved[spine], (spine, seen[spine], starved[spine])
        assert len(seen["spine01"] | seen["spine02"]) == 4  # between them, every leaf still gets flows
    finally:
        for n, s in seeds.items():
            _seed(lab, n, s)
    code, doc = _check(lab, "--fail-on", "warning")
    assert code == 0 and doc["findings"] == []


LISTENER = """
import socket, sys
srv = socket.socket(); srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
srv.bind(("203.0.113.1", 8443)); srv.listen(4); print("ready", flush=True)
conn, _ = srv.accept()
while conn.recv(1):
    conn.sendall(b"y")
"""
DIALER = """
import socket, sys, time
s = socket.socket(); s.bind(("192.0.2.53", int(sys.argv[1]))); s.connect(("203.0.113.1", 8443))
print("connected", flush=True)
while True:  # heard from twice a second: alive for the collector (lastrcv within its window)
    s.sendall(b"x"); s.recv(1); time.sleep(0.5)
"""


def _line(proc: subprocess.Popen, want: str) -> None:
    import select

    for _ in range(300):  # a bound, not a timing assertion
        if select.select([proc.stdout], [], [], 0.1)[0]:
            line = proc.stdout.readline()
            assert line.strip() == want, (line, proc.stderr.read() if proc.poll() is not None else "")
            return
        assert proc.poll() is None, proc.stderr.read()
    raise AssertionError(f"no {want!r}")


def test_a_server_opening_tcp_from_the_anycast_address_is_an_error_and_tcp_meets_hash_threshold(lab: Lab):
    # a local port whose reply (client -> 192.0.2.53) the real kernels hash back to server01, so the connection
    # really establishes (other ports: the SYN-ACK reaches another server, which resets it)
    ports = list(range(40000, 40400))
    asks = [f"route get 192.0.2.53 from 203.0.113.1 ipproto tcp sport 8443 dport {p}" for p in ports]
    spines = _route_get(lab, "client", asks)
    port = None
    for spine in sorted(set(spines)):
        mine = [(p, a) for p, a, s in zip(ports, asks, spines) if s == spine]
        leaves = _route_get(lab, spine, [f"{a} iif client" for _, a in mine])
        port = next((p for (p, _), leaf in zip(mine, leaves) if leaf == "leaf01"), port)
    assert port is not None
    ns = {n: lab.topo.node(n).ns for n in ("client", "server01")}
    procs = []
    try:
        listener = subprocess.Popen(["ip", "netns", "exec", ns["client"], sys.executable, "-c", LISTENER],
                                    stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        procs.append(listener)
        _line(listener, "ready")
        dialer = subprocess.Popen(["ip", "netns", "exec", ns["server01"], sys.executable, "-c", DIALER, str(port)],
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        procs.append(dialer)
        _line(dialer, "connected")
        code, doc = _check(lab)
        (f,) = [f for f in doc["findings"] if f["rule"] == "outbound-tcp-anycast"]
        assert code == 1 and f["severity"] == "error" and f["subject"] == "server01"
        assert f["evidence"] == [f"tcp 192.0.2.53:{port} → 203.0.113.1:8443"]
        # TCP on the anycast address, hash-threshold groups on the spines: the next failure's cost under both
        (h,) = [f for f in doc["findings"] if f["rule"] == "hash-threshold-tcp"]
        assert h["subject"] == ANY and "spine01, spine02" in h["fix"]
        assert any(e.startswith("if spine0") and "with resilient groups" in e for e in h["evidence"])
    finally:
        for p in procs:
            p.kill()
            p.communicate(timeout=30)
    code, doc = _check(lab, "--fail-on", "warning")
    assert code == 0 and doc["findings"] == []


ECHO = """
import socket, threading
srv = socket.socket(); srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
srv.bind(("192.0.2.53", 8081)); srv.listen(8); print("ready", flush=True)
def serve(c):
    while c.recv(1):
        c.sendall(b"y")
while True:
    threading.Thread(target=serve, args=(srv.accept()[0],), daemon=True).start()
"""
CLIENT = """
import socket, time
s = socket.socket(); s.bind(("203.0.113.1", 0)); s.connect(("192.0.2.53", 8081))
print("connected", flush=True)
while True:
    s.sendall(b"x"); s.recv(1); time.sleep(0.5)
"""


def test_a_tcp_connection_kept_open_past_the_threshold_is_long_lived_in_a_live_session(lab: Lab):
    """The monitor's HealthWatch over real SSH polls: a client's TCP connection to the anycast service, alive
    across polls past a 2 s threshold, raises long-lived-tcp; closed, the finding clears."""
    import asyncio

    from anycast_tui.collect.inventory import load_inventory
    from anycast_tui.model.health import Thresholds
    from anycast_tui.model.types import EventKind
    from anycast_tui.healthwatch import HealthWatch
    from anycast_tui.session import LiveSession

    procs = []
    key = f"long-lived-tcp {ANY}"

    async def run(client: subprocess.Popen) -> list[tuple[EventKind, str]]:
        session = LiveSession(load_inventory(lab.cfg.inventory), interval_s=60.0)
        watch = HealthWatch(session.timeline, min_interval_s=0, settle_s=0, thresholds=Thresholds(long_lived_s=2))

        def seen() -> list[tuple[EventKind, str]]:
            return [(e.kind, e.subject) for e in session.timeline.events
                    if e.kind in (EventKind.FINDING_RAISED, EventKind.FINDING_CLEARED)]

        async def poll_until(want: EventKind) -> None:
            for _ in range(120):  # a bound, not a timing assertion
                await session.poll_once()
                assert await asyncio.to_thread(watch.wait, 60)
                if (want, key) in seen():
                    return
                await asyncio.sleep(0.5)
            raise AssertionError(f"no {want.value} for {key}: {seen()}")

        try:
            await poll_until(EventKind.FINDING_RAISED)
            report = watch.report
            (f,) = [f for f in report.findings if f.rule == "long-lived-tcp"]
            line = f.evidence[0]
            assert line.split(": ")[1].startswith("tcp 203.0.113.1:") and "→ 192.0.2.53:8081 alive" in line
            client.kill()
            client.communicate(timeout=30)
            await poll_until(EventKind.FINDING_CLEARED)
            return seen()
        finally:
            watch.close()
            await session.stop()

    try:
        for s in ("server01", "server02", "server03", "server04"):
            p = subprocess.Popen(["ip", "netns", "exec", lab.topo.node(s).ns, sys.executable, "-c", ECHO],
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            procs.append(p)
            _line(p, "ready")
        client = subprocess.Popen(["ip", "netns", "exec", lab.topo.node("client").ns, sys.executable, "-c", CLIENT],
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        procs.append(client)
        _line(client, "connected")
        events = asyncio.run(run(client))
        assert [k for k, s in events if s == key] == [EventKind.FINDING_RAISED, EventKind.FINDING_CLEARED]
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.communicate(timeout=30)


def test_uneven_leaves_give_servers_a_quarter_or_an_eighth_for_real(uneven_lab: Lab):
    """leaf03 with two servers beside leaves with one: check explains the imbalance by the topology, and the
    real kernels (client -> spine -> leaf -> server, ``ip route get`` at each hop) share 400 flows so."""
    lab = uneven_lab
    code, doc = _check(lab)
    (imb,) = [f for f in doc["findings"] if f["rule"] == "imbalance"]
    assert code == 0 and "by topology" in imb["summary"] and "leaf01 has one server, leaf03 two" in imb["summary"]
    assert "server03 and server04 12.5 % each" in imb["summary"]
    flows = synthetic_flows(200, 400, dst="192.0.2.53", seed=7)
    asks = []
    for i in range(len(flows)):
        f = flows.flow(i)
        asks.append(f"route get {f.dst} from {f.src} ipproto {'tcp' if f.proto == 6 else 'udp'} "
                    f"sport {f.sport} dport {f.dport}")
    def hop(prev: list[str], came: list[str]) -> list[str]:
        """Per flow, where the device in ``prev`` sends it (it came in on the interface named ``came``)."""
        out = [""] * len(asks)
        for dev in sorted(set(prev)):
            mine = [i for i, d in enumerate(prev) if d == dev]
            for i, nxt in zip(mine, _route_get(lab, dev, [f"{asks[i]} iif {came[i]}" for i in mine])):
                out[i] = nxt
        return out

    spine = _route_get(lab, "client", asks)
    leaf = hop(spine, ["client"] * len(asks))
    at = dict(enumerate(hop(leaf, spine)))  # a leaf's interface towards a spine is named after it
    share = {s: sum(1 for v in at.values() if v == s) / len(at) for s in set(at.values())}
    assert set(share) == {"server01", "server02", "server03", "server04", "server05"}
    for s, want in (("server01", 0.25), ("server02", 0.25), ("server03", 0.125), ("server04", 0.125),
                    ("server05", 0.25)):
        assert abs(share[s] - want) < 0.06, share  # 400 flows: within 3.5 standard deviations


def test_bgp_lab_kernel_group_changed_behind_frrs_back(bgp_lab: Lab):
    """The BGP lab (FRR, its RIB read with vtysh): clean, no findings; spine01's kernel route cut to two of its four
    BGP paths behind zebra's back is a rib-fib-mismatch error (check polls twice: it persists), and the servers
    behind the two left get more than their share, by the routes."""
    code, doc = _check(bgp_lab, "--fail-on", "warning")
    assert code == 0 and doc["findings"] == [], doc["findings"]
    ns = bgp_lab.topo.node("spine01").ns
    want = {ln.b: ln.b_ip for ln in bgp_lab.topo.links if ln.a == "spine01" and ln.b.startswith("leaf")}

    def route(*leaves: str) -> None:
        hops = [w for leaf in leaves for w in ("nexthop", "via", want[leaf], "dev", leaf)]
        subprocess.run(["ip", "-n", ns, "route", "replace", ANY, "proto", "bgp", "metric", "20", *hops], check=True,
                       timeout=30)

    route("leaf01", "leaf02")
    try:
        code, doc = _check(bgp_lab)
        found = {(f["rule"], f["severity"], f["subject"]): f for f in doc["findings"]}
        f = found[("rib-fib-mismatch", "error", f"spine01 {ANY}")]
        assert code == 1 and "BGP: 4 paths, FIB: 2" in f["summary"] and "in two polls running" in f["summary"]
        imb = found[("imbalance", "warning", ANY)]
        assert "server01 and server02 get 37.5 % each, server03 and server04 12.5 % each" in imb["summary"]
    finally:
        route(*sorted(want))
    code, doc = _check(bgp_lab, "--fail-on", "warning")
    assert code == 0 and doc["findings"] == [], doc["findings"]
