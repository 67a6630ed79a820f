"""``anycast-tui check -c CONFIG``: the simulated fabric over real SSH (one endpoint per device, the real poller
and parsers), clean and with hazards built in the simulator; the table, the strict JSON and the exit codes."""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path

import pytest

from anycast_tui.collect.commands import FLOW_COMMANDS
from anycast_tui.lab.sim import SimConfig, SimFabric
from anycast_tui.model.types import Flow, Role

ROOT = Path(__file__).resolve().parents[2]
CLI = [sys.executable, "-c", "import sys; from anycast_tui.cli import main; sys.exit(main())"]
ANY = "192.0.2.53/32"
pytestmark = pytest.mark.ssh


async def _cli(*args: str) -> tuple[int, str, str]:
    proc = await asyncio.create_subprocess_exec(*CLI, *args, cwd=ROOT, stdin=asyncio.subprocess.DEVNULL,
                                                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await asyncio.wait_for(proc.communicate(), 120)
    return proc.returncode, out.decode(), err.decode()


def _strict(text: str):  # noqa: ANN202
    def refuse(name: str):  # noqa: ANN202
        raise ValueError(f"not strict JSON: {name}")
    return json.loads(text, parse_constant=refuse)


async def _fabric(make_farm, tmp_path: Path, sim: SimFabric):  # noqa: ANN001, ANN202 - (inventory, SSHFarm)
    """Every simulated device behind its own SSH endpoint; the inventory (roles, ss on the servers)."""
    farm = await make_farm({n: sim.handler(n) for n in sim.devices})
    lines = ["[fabric]", f'anycast_prefixes = ["{ANY}"]', "", "[defaults]", 'user = "atui"',
             f'key_path = "{farm.client_key_path}"', f'known_hosts = "{farm.known_hosts_path}"', 'platform = "sim"',
             "use_ssh_config = false", "use_agent = false", "connect_timeout_s = 3.0", "command_timeout_s = 5.0", ""]
    for n in sim.devices:
        ep = farm.endpoints[n]
        role = sim.role(n)
        lines += ["[[device]]", f'name = "{n}"', f'host = "{ep.host}"', f"port = {ep.port}", f'role = "{role.value}"']
        if role is Role.SERVER:
            lines.append('flow_sources = ["ss"]')
        lines.append("")
    path = tmp_path / "fabric.toml"
    path.write_text("\n".join(lines))
    return path, farm


async def test_a_clean_fabric_passes_with_no_findings(make_farm, tmp_path):
    inv, _ = await _fabric(make_farm, tmp_path, SimFabric())
    code, out, err = await _cli("check", "-c", str(inv))
    assert code == 0, err
    lines = out.splitlines()
    assert lines[0] == f"check: {inv}; devices: 10 of 10 answered"
    assert lines[1] == "findings: 0 (0 error, 0 warning)"
    assert "server shares of 192.0.2.53/32 (hash space (10,000 synthetic flows); imbalance" in out
    assert any(line.split()[:2] == ["spine", "spine01"] for line in lines)  # the hash settings table
    code, out, err = await _cli("check", "-c", str(inv), "--json", "--fail-on", "warning")
    assert code == 0, err
    doc = _strict(out)
    assert doc["schema"] == 1 and doc["findings"] == [] and doc["worst"] is None and doc["exit"] == 0
    assert doc["answered"] == 10 and doc["not_answered"] == []
    assert sorted(s["server"] for s in doc["shares"]) == ["server01", "server02", "server03", "server04"]
    assert {r["device"]: r["tier"] for r in doc["hash_settings"]}["leaf01"] == "leaf"


async def test_hazards_each_show_and_exit_by_severity(make_farm, tmp_path):
    # the same seed on spines and leaves (2 servers per leaf): polarized leaves, the risk, the imbalance; and
    # server01 holds a TCP connection it opened from the anycast address (an error)
    seeds = tuple((n, 7) for n in ("spine01", "spine02", "leaf01", "leaf02", "leaf03", "leaf04"))
    sim = SimFabric(SimConfig(servers_per_leaf=2, hash_seeds=seeds))
    sim.set_connections("server01", [Flow(6, "198.51.100.7", 443, "192.0.2.53", 45678),
                                     Flow(6, "203.0.113.9", 40000, "192.0.2.53", 443)])
    inv, _ = await _fabric(make_farm, tmp_path, sim)
    code, out, err = await _cli("check", "-c", str(inv), "--json")
    assert code == 1, err
    doc = _strict(out)
    rules = {(f["rule"], f["severity"], f["subject"]) for f in doc["findings"]}
    for leaf in ("leaf01", "leaf02", "leaf03", "leaf04"):
        assert ("polarized", "warning", f"{leaf} {ANY}") in rules
        assert ("same-seed-consecutive-tiers", "warning", leaf) in rules
    assert ("imbalance", "warning", ANY) in rules
    assert ("outbound-tcp-anycast", "error", "server01") in rules
    assert ("hash-threshold-tcp", "warning", ANY) in rules  # live TCP seen on a server
    assert doc["worst"] == "error" and doc["exit"] == 1
    out_f = next(f for f in doc["findings"] if f["rule"] == "outbound-tcp-anycast")
    assert out_f["evidence"] == ["tcp 192.0.2.53:45678 → 198.51.100.7:443"]
    leaf01 = next(s for s in doc["spreads"] if s["device"] == "leaf01")
    assert leaf01["ratio"] is None  # infinite (a next hop gets nothing): null, never Infinity
    assert sorted(x for _, x in leaf01["shares"]) == [0.0, 1.0]
    # the table says the same, one finding a block
    code, out, _ = await _cli("check", "-c", str(inv))
    assert code == 1
    assert "ERROR    outbound-tcp-anycast         server01" in out
    assert "WARNING  polarized                    leaf01 192.0.2.53/32" in out
    # the fix: seeds of their own, the connection gone -> clean
    for n, seed in seeds:
        sim.set_hash(n, seed=1000 + len(n) * 7 + int(n[-2:]) * (1 if n.startswith("leaf") else 13))
    sim.set_connections("server01", [])
    code, out, err = await _cli("check", "-c", str(inv), "--fail-on", "warning")
    assert code == 0, out + err
    assert "findings: 0 (0 error, 0 warning)" in out


async def test_seed_zero_and_uneven_leaves_are_warnings(make_farm, tmp_path):
    sim = SimFabric(SimConfig(leaf_servers=(1, 1, 2, 1), hash_seeds=(("spine01", 0),)))
    inv, _ = await _fabric(make_farm, tmp_path, sim)
    code, out, err = await _cli("check", "-c", str(inv), "--json")
    assert code == 0, err  # warnings only: the default --fail-on error passes
    doc = _strict(out)
    assert {(f["rule"], f["subject"]) for f in doc["findings"]} == {("seed-zero", "spine01"), ("imbalance", ANY)}
    imb = next(f for f in doc["findings"] if f["rule"] == "imbalance")
    assert "leaf01 has one server, leaf03 two" in imb["summary"]
    code, _, _ = await _cli("check", "-c", str(inv), "--fail-on", "warning")
    assert code == 1


async def test_a_device_that_does_not_answer_is_named_and_fails(make_farm, tmp_path):
    inv, farm = await _fabric(make_farm, tmp_path, SimFabric())
    await farm.endpoints["leaf03"].stop()  # connection refused
    code, out, err = await _cli("check", "-c", str(inv))
    assert code == 1, err
    first = out.splitlines()[0]
    assert first.startswith(f"check: {inv}; devices: 9 of 10 answered; did not answer: leaf03 (")
    assert "refused" in first
    assert "ERROR    device-not-answering         leaf03" in out
    code, out, _ = await _cli("check", "-c", str(inv), "--json")
    doc = _strict(out)
    assert code == 1 and doc["not_answered"] == ["leaf03"]
    assert next(d for d in doc["devices"] if d["name"] == "leaf03")["status"] == "error"


async def test_usage_errors_exit_2():
    for args in (("check",), ("check", "--at", "+5", "-c", "x.toml"), ("check", "-c", "x.toml", "--recording", "y"),
                 ("check", "-c", "x.toml", "--fail-on", "info")):
        code, out, err = await _cli(*args)
        assert code == 2, (args, out, err)
    code, out, err = await _cli("check", "-c", "/nonexistent/fabric.toml")
    assert code == 2 and out == "" and len(err.strip().splitlines()) == 1


async def test_help_has_examples():
    code, out, _ = await _cli("check", "--help")
    assert code == 0 and "examples:" in out and "anycast-tui check -c " in out and "exit status" in out


def test_flow_commands_are_the_collectors():
    # the simulator answers exactly the lines the collector sends for ss
    sim = SimFabric()
    sim.set_connections("server01", [Flow(6, "203.0.113.9", 40000, "192.0.2.53", 443),
                                     Flow(17, "203.0.113.9", 40001, "192.0.2.53", 53)])
    tcp, udp = (c.line for c in FLOW_COMMANDS["ss"])
    assert "203.0.113.9:40000" in sim.handle("server01", tcp).stdout and "lastrcv:40" in sim.handle("server01", tcp).stdout
    assert sim.handle("server01", udp).stdout.startswith("ESTAB  0      0      192.0.2.53:53")
    assert sim.handle("spine01", tcp).stdout == ""
