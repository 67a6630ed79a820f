"""``calc --device NAME -c CONFIG``: the device's tables read live over real SSH give the same answers as its files.
``whatif --device NAME -c CONFIG``: rows and JSON name the neighbours the next hops lead to (as the fabric's own
addresses say), the device is named as the inventory names it, and without flows it computes on the TUI's sample."""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path

import pytest

from anycast_tui.lab.sim import SimFabric
from anycast_tui.model.flows import write_flows_csv
from anycast_tui.model.timeline import Timeline
from anycast_tui.impacttracker import ImpactTracker

ROOT = Path(__file__).resolve().parents[2]
ANY = "192.0.2.53/32"
CLI = [sys.executable, "-c", "import sys; from anycast_tui.cli import main; sys.exit(main())"]
pytestmark = pytest.mark.ssh


async def _cli(*args: str) -> tuple[int, str, str]:
    proc = await asyncio.create_subprocess_exec(*CLI, *args, cwd=ROOT, stdin=asyncio.subprocess.DEVNULL,
                                                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await asyncio.wait_for(proc.communicate(), 60)
    return proc.returncode, out.decode(), err.decode()


def _inventory(path: Path, farm, names, prefixes=()) -> Path:  # noqa: ANN001 - SSHFarm
    lines = ["[fabric]", "poll_interval_s = 1.0", f"anycast_prefixes = {json.dumps(list(prefixes))}", "", "[defaults]", 'user = "atui"', f'key_path = "{farm.client_key_path}"', f'known_hosts = "{farm.known_hosts_path}"', 'platform = "sim"',
             "use_ssh_config = false", "use_agent = false", ""]
    for n in names:
        ep = farm.endpoints[n]
        lines += ["[[device]]", f'name = "{n}"', f'host = "{ep.host}"', f"port = {ep.port}", ""]
    path.write_text("\n".join(lines))
    return path


async def test_calc_device_over_ssh_equals_calc_on_files(make_farm, tmp_path):
    sim = SimFabric()
    farm = await make_farm({n: sim.handler(n) for n in ("spine01", "leaf01")})
    inv = _inventory(tmp_path / "inv.toml", farm, ["spine01", "leaf01"])
    flows = tmp_path / "flows.csv"
    flows.write_text("proto,src,sport,dst,dport\n" + "".join(
        f"{'tcp' if i % 2 else 'udp'},203.0.113.{1 + i % 200},{20000 + 7 * i},192.0.2.53,{53 if i % 3 else 443}\n"
        for i in range(300)))
    # The same device's outputs as files.
    files = {}
    for opt, line in (("--routes", "ip -j -4 route show table all"), ("--nexthops", "ip -j nexthop show"),
                      ("--buckets", "ip -j nexthop bucket show"), ("--links", "ip -j addr show")):
        files[opt] = tmp_path / opt.strip("-")
        files[opt].write_text(sim.handle("spine01", line).stdout)
    hs = sim.hash_settings("spine01")

    code, live, err = await _cli("calc", "--device", "spine01", "-c", str(inv), "--flows", str(flows), "--json")
    assert code == 0, err
    args = [a for opt, f in files.items() for a in (opt, str(f))]
    code, offline, err = await _cli("calc", *args, "--hash-policy", str(hs.policy), "--hash-seed", str(hs.seed),
                                    "--flows", str(flows), "--json")
    assert code == 0, err
    live_rows, file_rows = json.loads(live), json.loads(offline)
    assert len(live_rows) == 300 and live_rows == file_rows
    assert {r["placement"] for r in live_rows} == {"exact"}
    assert len({r["gateway"] for r in live_rows}) == 4  # spread over the four leaves


async def test_calc_device_unreachable_is_one_line(make_farm, tmp_path):
    sim = SimFabric()
    farm = await make_farm({"spine01": sim.handler("spine01")})
    inv = _inventory(tmp_path / "inv.toml", farm, ["spine01"])
    await farm.endpoints["spine01"].stop()
    code, out, err = await _cli("calc", "--device", "spine01", "-c", str(inv), "-p", "udp", "-s", "203.0.113.1",
                                "--sport", "1", "-d", "192.0.2.53", "--dport", "53")
    assert code == 1 and out == ""
    assert len(err.strip().splitlines()) == 1 and "spine01" in err and "refused" in err
    code, _, err = await _cli("calc", "--device", "nope", "-c", str(inv), "-p", "udp", "-s", "203.0.113.1",
                              "-d", "192.0.2.53")
    assert code == 2 and "no device named 'nope'" in err


def _owner(sim: SimFabric, gateway: str) -> str:
    """Which device holds ``gateway`` on an interface, from each device's own `ip -j addr show`."""
    held = [n for n in sim.devices if f'"local":"{gateway}"' in sim.handle(n, "ip -j addr show").stdout.replace(" ", "")]
    assert len(held) == 1, (gateway, held)
    return held[0]


async def test_whatif_live_names_neighbours_and_uses_the_tuis_sample(make_farm, tmp_path):
    sim = SimFabric()
    names = sim.devices
    farm = await make_farm({n: sim.handler(n) for n in names})
    inv = _inventory(tmp_path / "inv.toml", farm, names, prefixes=(ANY,))

    code, out, err = await _cli("whatif", "--device", "spine01", "-c", str(inv), "--json")
    assert code == 0, err
    doc = json.loads(out)
    # the TUI's sample: what its impact tracker computes with for the first anycast prefix
    sample = ImpactTracker(Timeline()).flows(ANY)
    assert sample is not None and doc["flows"] == len(sample) == 10_000
    assert "the TUI's sample, 10000 flows of 200 clients to 192.0.2.53" in err
    events = doc["events"]
    assert events and {e["device"] for e in events} == {"spine01"}
    anycast = [e for e in events if e["neighbour"] is not None and e["neighbour"].startswith("leaf")]
    assert len(anycast) >= 4
    for e in events:
        if e["nexthop"] and e["neighbour"] is not None:
            assert e["neighbour"] == _owner(sim, e["nexthop"])

    # the same sample as a CSV gives the same counts: it is that sample
    csv = tmp_path / "sample.csv"
    csv.write_text(write_flows_csv(sample))
    code, out2, err = await _cli("whatif", "--device", "spine01", "-c", str(inv), "--flows", str(csv), "--json")
    assert code == 0, err
    again = json.loads(out2)
    assert [(e["nexthop"], e["mappings"]) for e in again["events"]] == [(e["nexthop"], e["mappings"]) for e in events]

    # the table's rows are the neighbours, not their addresses
    code, table, err = await _cli("whatif", "--device", "spine01", "-c", str(inv))
    assert code == 0, err
    rows = {ln.split()[0] for ln in table.splitlines()[2:]}
    assert {e["neighbour"] for e in anycast} <= rows
    assert not any(e["nexthop"] in rows for e in anycast)


async def test_whatif_live_without_flows_or_anycast_prefix_is_one_line(make_farm, tmp_path):
    sim = SimFabric()
    farm = await make_farm({"spine01": sim.handler("spine01")})
    inv = _inventory(tmp_path / "inv.toml", farm, ["spine01"])
    code, out, err = await _cli("whatif", "--device", "spine01", "-c", str(inv))
    assert code == 2 and out == ""
    assert len(err.strip().splitlines()) == 1 and "anycast_prefixes" in err
