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
