"""Every ip sample of the shared corpus through ``anycast-tui parse``: parsed, or refused in one line.

Samples are matched by command slug (``<source>__<slug>__<n>``): slugs starting
with ``ip-`` plus the SuzieQ captures that concatenate ``ip -d addr show``.
Excerpts indented by their host document are read as they are: the parsers
ignore indentation (continuation lines are known by their first word).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from anycast_tui.cli import main

ROOT = Path(__file__).resolve().parent.parent.parent

# Samples refused on purpose (exit 2, one line), and why.
REFUSED = {
    "iproute2__ip-stats-show__1.txt": "`ip stats show` text is not a command family we parse",
    "ntc__ip-vrf-show__1.txt": "`ip vrf show` prints a table of VRF names, not routes or links",
    "suzieq__vtysh-show-int-vrf-all+ip-d-addr-show__1.txt": "FRR `show interface` text precedes the ip output",
    "suzieq__vtysh-show-int-vrf-all+ip-d-addr-show__2.txt": "FRR `show interface` text precedes the ip output",
    "suzieq__vtysh-show-int-vrf-all+ip-d-addr-show__3.txt": "FRR `show interface` text precedes the ip output",
}


def ip_samples(corpus: Path) -> list[Path]:
    out = []
    for p in sorted(corpus.iterdir()):
        parts = p.name.split("__")
        if len(parts) == 3 and (parts[1].startswith("ip-") or "+ip-" in parts[1]):
            out.append(p)
    return out


def cli(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(["parse", *argv])
    cap = capsys.readouterr()
    return code, cap.out, cap.err


def test_corpus_has_ip_samples(corpus_dir):
    names = {p.name for p in ip_samples(corpus_dir)}
    assert len(names) >= 50
    assert set(REFUSED) <= names


def test_every_ip_sample_parses_or_is_refused_in_one_line(corpus_dir, capsys):
    parsed, refused = [], []
    for path in ip_samples(corpus_dir):
        for extra in ([], ["--json"]):
            code, out, err = cli(capsys, str(path), *extra)
            assert "Traceback" not in err, path.name
            if code == 0:
                assert err == "", path.name
                assert out.strip() or path.stat().st_size == 0, path.name
                if extra:
                    json.loads(out)
            else:
                assert code == 2, (path.name, err)
                assert out == ""
                assert err.count("\n") == 1 and err.startswith(f"anycast-tui parse: {path}: "), (path.name, err)
        (parsed if code == 0 else refused).append(path.name)
    assert sorted(refused) == sorted(REFUSED)
    assert len(parsed) >= 50


def records(capsys, corpus_dir: Path, name: str, *extra: str):
    code, out, err = cli(capsys, str(corpus_dir / name), "--json", *extra)
    assert code == 0, err
    return json.loads(out)


def test_frrdoc_16_way_route_with_nhid(corpus_dir, capsys):
    (r,) = records(capsys, corpus_dir, "frrdoc__ip-route-show__1.txt")
    assert (r["dst"], r["nhid"], r["protocol"], r["metric"]) == ("4.4.4.4/32", 185483868, "sharp", 20)
    assert len(r["nexthops"]) == 16 and {nh["dev"] for nh in r["nexthops"]} == {"enp39s0"}


def test_ipv6_multipath_with_link_local_gateways(corpus_dir, capsys):
    for name in ("iproute2__ip-6-route-show__1.txt", "iproute2__ip-6-route-show__2.txt"):
        rs = records(capsys, corpus_dir, name)
        mp = next(r for r in rs if r["dst"] == "4:5::6:7/128")
        assert mp["nhid"] == 18 and [nh["gateway"] for nh in mp["nexthops"]] == ["fe80::99", "fe80::44"]


def test_linkdown_flags(corpus_dir, capsys):
    rs = records(capsys, corpus_dir, "ntc__ip-route-show__3.txt")
    down = [r["dst"] for r in rs if "linkdown" in r["nexthops"][0]["flags"]]
    assert down == ["192.168.88.0/24", "192.168.122.0/24"]
    rs = records(capsys, corpus_dir, "jc__ip-route-show__1.txt")
    assert rs[-1]["nexthops"][0]["flags"] == ["linkdown"]


def test_vrf_tables_blackholes_and_onlink(corpus_dir, capsys):
    rs = records(capsys, corpus_dir, "suzieq__ip-route-show-table-all__3.txt")
    tables = {r["table"] for r in rs}
    assert {"evpn-vrf", "mgmt", "internet-vrf", "main", "local"} <= tables
    bh = [r["dst"] for r in rs if r["type"] == "blackhole"]
    assert "172.16.1.0/24" in bh
    onlink = [r for r in rs if r["dst"] == "172.16.1.101/32" and r["table"] == "evpn-vrf"][0]
    assert onlink["nexthops"][0]["flags"] == ["onlink"]
    unreach = [r for r in rs if r["type"] == "unreachable" and r["table"] == "mgmt"][0]
    assert (unreach["dst"], unreach["metric"], unreach["nexthops"]) == ("0.0.0.0/0", 4278198272, [])


def test_bgp_unnumbered_multipath(corpus_dir, capsys):
    rs = records(capsys, corpus_dir, "suzieq__ip-route-show-table-all__1.txt")
    d = next(r for r in rs if r["dst"] == "0.0.0.0/0" and r["table"] == "main")
    assert [(nh["gateway"], nh["dev"], nh["flags"]) for nh in d["nexthops"]] == [
        ("169.254.0.1", "swp2", ["onlink"]), ("169.254.0.1", "swp1", ["onlink"])]


def test_route_types_in_json(corpus_dir, capsys):
    rs = records(capsys, corpus_dir, "iproute2__ip-d-j-route-show__2.json")
    assert [r["type"] for r in rs] == ["unicast", "unreachable", "prohibit", "blackhole"]
    assert rs[0]["dst"] == "0.0.0.0/0" and rs[0]["nexthops"][0]["gateway"] == "192.168.85.1"


def test_detail_text_and_json_samples_agree(corpus_dir, capsys):
    assert records(capsys, corpus_dir, "iproute2__ip-d-route-show__1.txt") == \
        records(capsys, corpus_dir, "iproute2__ip-d-j-route-show__1.json")


def test_resilient_nexthops_and_buckets(corpus_dir, capsys):
    nt = records(capsys, corpus_dir, "iproute2__ip-nexthop-show__1.txt")
    (g,) = nt["groups"]
    assert (g["id"], g["type"], g["buckets"], g["idle_timer"]) == (10, "resilient", 8, 120)
    assert nt == records(capsys, corpus_dir, "iproute2__ip-nexthop-show__1.txt", "--as", "ip-nexthop")
    (b,) = records(capsys, corpus_dir, "iproute2__ip-j-nexthop-bucket-get__1.json")
    assert (b["group_id"], b["index"], b["nhid"], b["idle_time"]) == (10, 5, 1, 104.89)
    bs = records(capsys, corpus_dir, "iproute2__ip-nexthop-bucket-show__3.txt")
    assert [x["nhid"] for x in bs] == [1, 1, 2, 2, 1, 1, 1, 1]


def test_interfaces(corpus_dir, capsys):
    links = records(capsys, corpus_dir, "ntc__ip-link-show__2.txt")
    wlan = next(i for i in links if i["name"] == "wlan0")
    assert wlan["operstate"] == "DOWN" and "NO-CARRIER" in wlan["flags"]
    assert ["linkmode", "DORMANT"] in wlan["extra"] and ["permaddr", "cc:cc:cc:cc:cc:cc"] in wlan["extra"]
    addrs = records(capsys, corpus_dir, "cloudinit__ip-j-addr-show__1.json")
    assert all(i["addresses"] for i in addrs if i["name"] == "lo")
    bond = next(i for i in records(capsys, corpus_dir, "suzieq__ip-d-addr-show__1.txt") if i["name"] == "eth1")
    assert bond["master"] == "bond0"


def test_refusal_names_the_line(corpus_dir, capsys):
    code, out, err = cli(capsys, str(corpus_dir / "ntc__ip-vrf-show__1.txt"), "--as", "ip-route")
    assert code == 2 and err.strip().endswith("line 1: unexpected token 'Name' in route")


@pytest.mark.parametrize("name", ["frrdoc__ip-route-show__1.txt", "iproute2__ip-j-nexthop-show__1.json",
                                  "ntc__ip-vrf-show__1.txt"])
def test_through_a_real_process(corpus_dir, name):
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    proc = subprocess.run([sys.executable, "-c", "import sys; from anycast_tui.cli import main; sys.exit(main())",
                           "parse", str(corpus_dir / name), "--json"], capture_output=True, text=True, env=env,
                          timeout=60)
    if name in REFUSED:
        assert proc.returncode == 2 and proc.stdout == "" and proc.stderr.count("\n") == 1
        assert "Traceback" not in proc.stderr
    else:
        assert proc.returncode == 0 and proc.stderr == ""
        assert json.loads(proc.stdout)
