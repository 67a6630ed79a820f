"""``calc --device NAME -c CONFIG``: the device's tables read live over real SSH give the same answers as its files."""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path

import pytest

from anycast_tui.lab.sim import SimFabric

ROOT = Path(__file__).resolve().parents[2]
CLI = [sys.executable, "-c", "import sys; from anycast_tui.cli import main; sys.exit(main())"]
pytestmark = pytest.mark.ssh


async def _cli(*args: str) -> tuple[int, str, str]:
    proc = await asyncio.create_subprocess_exec(*CLI, *args, cwd=ROOT, stdin=asyncio.subprocess.DEVNULL,
                                                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await asyncio.wait_for(proc.communicate(), 60)
    return proc.returncode, out.decode(), err.decode()


def _inventory(path: Path, farm, names) -> Path:  # noqa: ANN001 - SSHFarm
    lines = ["[fabric]", "poll_interval_s = 1.0", "", "[defaults]", 'user = "atui"', f'key_path = "{farm.client_key_path}"', f'known_hosts = "{farm.known_hosts_path}"', 'platform = "sim"',
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
