"""calc / whatif end to end through the CLI entry point, on outputs captured from a real kernel (iproute2 6.1)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from anycast_tui.cli import main
from anycast_tui.model.flows import synthetic_flows, write_flows_csv
from anycast_tui.model.hashing import linux_multipath_hash
from anycast_tui.model.mapping import hash_threshold

# ip -j route show / ip -j nexthop show / ip -j nexthop bucket show / ip route show of one router:
# 192.0.2.53 via resilient group 10 (members 1,2,3; 8 buckets), 192.0.2.54 plain multipath weights 1:3.
ROUTES_JSON = '[{"dst":"192.0.2.53","nhid":10,"flags":[],"nexthops":[{"gateway":"198.19.0.2","dev":"nh0","weight":1,"flags":[]},{"gateway":"198.19.1.2","dev":"nh1","weight":1,"flags":[]},{"gateway":"198.19.2.2","dev":"nh2","weight":1,"flags":[]}]},{"dst":"192.0.2.54","flags":[],"nexthops":[{"gateway":"198.19.0.2","dev":"nh0","weight":1,"flags":[]},{"gateway":"198.19.1.2","dev":"nh1","weight":3,"flags":[]}]},{"type":"blackhole","dst":"192.0.2.99","flags":[]},{"dst":"198.19.0.0/24","dev":"nh0","protocol":"kernel","scope":"link","prefsrc":"198.19.0.1","flags":[]},{"dst":"198.19.1.0/24","dev":"nh1","protocol":"kernel","scope":"link","prefsrc":"198.19.1.1","flags":[]},{"dst":"198.19.2.0/24","dev":"nh2","protocol":"kernel","scope":"link","prefsrc":"198.19.2.1","flags":[]}]'
NEXTHOPS_JSON = '[{"id":1,"gateway":"198.19.0.2","dev":"nh0","scope":"link","flags":[]},{"id":2,"gateway":"198.19.1.2","dev":"nh1","scope":"link","flags":[]},{"id":3,"gateway":"198.19.2.2","dev":"nh2","scope":"link","flags":[]},{"id":10,"group":[{"id":1},{"id":2},{"id":3}],"type":"resilient","resilient_args":{"buckets":8,"idle_timer":0,"unbalanced_timer":0,"unbalanced_time":0},"flags":[]}]'
BUCKETS_JSON = '[{"id":10,"bucket":{"index":0,"idle_time":0.02,"nhid":3},"flags":[]},{"id":10,"bucket":{"index":1,"idle_time":0.02,"nhid":3},"flags":[]},{"id":10,"bucket":{"index":2,"idle_time":0.02,"nhid":3},"flags":[]},{"id":10,"bucket":{"index":3,"idle_time":0.02,"nhid":2},"flags":[]},{"id":10,"bucket":{"index":4,"idle_time":0.02,"nhid":2},"flags":[]},{"id":10,"bucket":{"index":5,"idle_time":0.02,"nhid":1},"flags":[]},{"id":10,"bucket":{"index":6,"idle_time":0.02,"nhid":1},"flags":[]},{"id":10,"bucket":{"index":7,"idle_time":0.02,"nhid":1},"flags":[]}]'
ROUTES_TEXT = '192.0.2.53 nhid 10 \n\tnexthop via 198.19.0.2 dev nh0 weight 1 \n\tnexthop via 198.19.1.2 dev nh1 weight 1 \n\tnexthop via 198.19.2.2 dev nh2 weight 1 \n192.0.2.54 \n\tnexthop via 198.19.0.2 dev nh0 weight 1 \n\tnexthop via 198.19.1.2 dev nh1 weight 3 \nblackhole 192.0.2.99 \n198.19.0.0/24 dev nh0 proto kernel scope link src 198.19.0.1 \n198.19.1.0/24 dev nh1 proto kernel scope link src 198.19.1.1 \n198.19.2.0/24 dev nh2 proto kernel scope link src 198.19.2.1 \n'
SEED, POLICY = 0x5EED, 1
GW = {1: "198.19.0.2", 2: "198.19.1.2", 3: "198.19.2.2"}
BUCKETS = [3, 3, 3, 2, 2, 1, 1, 1]


@pytest.fixture
def files(tmp_path):
    paths = {}
    for name, text in (("routes.json", ROUTES_JSON), ("nh.json", NEXTHOPS_JSON), ("buckets.json", BUCKETS_JSON),
                       ("routes.txt", ROUTES_TEXT)):
        (tmp_path / name).write_text(text)
        paths[name] = str(tmp_path / name)
    flows = synthetic_flows(300, 600, dst="192.0.2.53", seed=9)
    more = synthetic_flows(300, 600, dst="192.0.2.54", seed=10)
    paths["flows"] = tmp_path / "flows.csv"
    text = write_flows_csv(flows) + "".join(write_flows_csv(more).splitlines(True)[1:])
    paths["flows"].write_text(text)
    paths["flows"] = str(paths["flows"])
    return paths


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def base(files, routes="routes.json") -> list[str]:
    return ["--routes", files[routes], "--nexthops", files["nh.json"], "--buckets", files["buckets.json"],
            "--hash-policy", str(POLICY), "--hash-seed", str(SEED)]


def test_calc_json_matches_the_hash_and_the_tables(files, capsys):
    code, out, err = run(capsys, "calc", *base(files), "--flows", files["flows"], "--json")
    assert code == 0 and err == ""
    rows = json.loads(out)
    assert len(rows) == 1200
    assert set(rows[0]) >= {"proto", "src", "sport", "dst", "dport", "gateway", "dev", "placement"}
    flows = synthetic_flows(300, 600, dst="192.0.2.53", seed=9)
    h = linux_multipath_hash(flows, policy=POLICY, seed=SEED)
    want = [GW[BUCKETS[x % 8]] for x in h]
    assert [r["gateway"] for r in rows[:600]] == want
    assert {r["nhid"] for r in rows[:600]} == {1, 2, 3}
    more = synthetic_flows(300, 600, dst="192.0.2.54", seed=10)
    h2 = linux_multipath_hash(more, policy=POLICY, seed=SEED)
    want2 = np.array([GW[1], GW[2]])[hash_threshold(h2, [1, 3])]
    assert [r["gateway"] for r in rows[600:]] == list(want2)
    assert {r["placement"] for r in rows} == {"exact"}
    # input order and fields kept
    assert rows[0]["dst"] == "192.0.2.53" and rows[-1]["dst"] == "192.0.2.54"
    assert rows[5]["sport"] == int(flows.sport[5]) and rows[5]["proto"] in ("tcp", "udp")


def test_text_routes_and_one_flow_human_output(files, capsys):
    code, out, _ = run(capsys, "calc", *base(files, "routes.txt"), "-p", "udp", "-s", "203.0.113.10", "--sport", "32700", "-d", "192.0.2.54",
                       "--dport", "53")
    assert code == 0
    lines = out.splitlines()
    assert lines[0].split()[:5] == ["proto", "src", "sport", "dst", "dport"]
    assert "udp" in lines[1] and "32700" in lines[1] and "exact" in lines[1]
    assert ("via 198.19.0.2 dev nh0" in lines[1]) or ("via 198.19.1.2 dev nh1" in lines[1])
    code, out, _ = run(capsys, "calc", *base(files), "-p", "tcp", "-s", "203.0.113.1", "-d", "192.0.2.99",
                       "--json")
    assert json.loads(out)[0]["outcome"] == "drop" and json.loads(out)[0]["type"] == "blackhole"


def test_seed_zero_says_unknown_and_lists_candidates(files, capsys):
    argv = base(files)
    argv[argv.index("--hash-seed") + 1] = "0"
    code, out, _ = run(capsys, "calc", *argv, "-p", "udp", "-s", "203.0.113.10", "-d", "192.0.2.54", "--json")
    row = json.loads(out)[0]
    assert code == 0 and row["placement"] == "unknown" and row["gateway"] is None
    assert {c["gateway"] for c in row["candidates"]} == {GW[1], GW[2]}
    assert "hash seed is 0" in row["reason"]


@pytest.mark.parametrize("argv, words", [
    (["--hash-policy", "2", "--hash-seed", "1"], "unknown hash policy 2"),
    (["--hash-policy", "1"], "--hash-seed is required"),
    (["--hash-policy", "1", "--hash-seed", "1", "-p", "udp", "-s", "203.0.113.300", "-d", "192.0.2.53"],
     "does not appear to be an IPv4 or IPv6 address"),
    (["--hash-policy", "1", "--hash-seed", "1", "-p", "gre2", "-s", "203.0.113.3", "-d", "192.0.2.53"],
     "unknown protocol"),
    (["--hash-policy", "1", "--hash-seed", "1"], "no flow"),
])
def test_bad_input_is_one_line_exit_2(files, capsys, argv, words):
    tables = ["--routes", files["routes.txt"], "--nexthops", files["nh.json"], "--buckets", files["buckets.json"]]
    code, out, err = run(capsys, "calc", *tables, *argv)
    assert code == 2 and out == ""
    assert len(err.strip().splitlines()) == 1 and words in err


def test_nhid_without_its_group_and_bad_csv_line(files, capsys, tmp_path):
    code, _, err = run(capsys, "calc", "--routes", files["routes.json"], "--hash-policy", "1", "--hash-seed", "1",
                       "-p", "udp", "-s", "203.0.113.3", "-d", "192.0.2.53")
    assert code == 2 and "nhid 10" in err and len(err.strip().splitlines()) == 1
    bad = tmp_path / "bad.csv"
    bad.write_text("proto,src,sport,dst,dport\nudp,203.0.113.1,1,192.0.2.53,53\nudp,203.0.113.1,1,192.0.2.53\n")
    code, _, err = run(capsys, "calc", *base(files), "--flows", str(bad))
    assert code == 2 and "line 3" in err and len(err.strip().splitlines()) == 1
    code, _, err = run(capsys, "calc", *base(files)[:2], "--hash-policy", "1", "--hash-seed", "1",
                       "--nexthops", files["buckets.json"], "--flows", str(bad))
    assert code == 2 and "expected ip-nexthop-json" in err


def test_whatif_fail_json_per_flow_and_table(files, capsys):
    code, out, err = run(capsys, "whatif", *base(files), "--flows", files["flows"], "--fail", "198.19.1.2", "--json")
    assert code == 0, err
    doc = json.loads(out)
    (ev,) = doc["events"]
    names = [m["name"] for m in ev["mappings"]]
    assert names == ["actual", "hash-threshold", "modulo-n", "resilient", "maglev"]
    per = ev["per_flow"]
    assert len(per) == 1200 and set(per[0]) >= {"before", "after", "moved"}
    moved = [p for p in per if p["moved"]]
    actual = ev["mappings"][0]
    assert actual["moved"] == len(moved) == actual["tcp_reset"] + actual["udp"]
    # the resilient group (192.0.2.53) moves only flows that were on nh1; the plain route may move others
    res_moved = [p for p in per[:600] if p["moved"]]
    assert res_moved and all(p["before"] == "via 198.19.1.2 dev nh1" for p in res_moved)
    assert all(p["after"] != "via 198.19.1.2 dev nh1" for p in per)
    code, out, _ = run(capsys, "whatif", *base(files), "--flows", files["flows"])
    lines = out.splitlines()
    assert code == 0 and "moved/TCP reset/collateral" in lines[0]
    assert lines[1].split() == ["fail", "actual", "hash-threshold", "modulo-n", "resilient", "maglev"]
    assert {ln.split()[0] for ln in lines[2:]} == {"198.19.0.2", "198.19.1.2", "198.19.2.2"}


def test_whatif_errors(files, capsys):
    code, _, err = run(capsys, "whatif", *base(files), "--flows", files["flows"], "--fail", "198.19.9.9")
    assert code == 2 and "no next hop via 198.19.9.9" in err
    code, _, err = run(capsys, "whatif", *base(files), "--flows", files["flows"], "--mappings", "ecmp")
    assert code == 2 and "unknown mapping ecmp" in err


def test_hash_options_over_the_devices_settings_leave_the_arguments_as_parsed():
    """Options given on the command line win over what the device reported, an unset one takes the device's
    value, and reading them changes nothing in the parsed arguments (whatif and calc read them again)."""
    import argparse

    from anycast_tui.commands.inputs import add_inputs, hash_settings
    from anycast_tui.model.types import HashSettings

    p = argparse.ArgumentParser()
    add_inputs(p)
    device = HashSettings(policy=1, seed=0xBEEF, fields=0x0037, ignore_routes_with_linkdown=True)
    args = p.parse_args(["--device", "spine01", "-c", "lab.toml", "--hash-seed", "0x5eed"])
    parsed = dict(vars(args))
    hs = hash_settings(args, device)
    assert (hs.policy, hs.seed, hs.fields, hs.ignore_routes_with_linkdown) == (1, 0x5EED, 0x0037, True)
    assert vars(args) == parsed
    other = hash_settings(args, HashSettings(policy=3, seed=7, fields=0x0003))  # another device: its own values
    assert (other.policy, other.seed, other.fields, other.ignore_routes_with_linkdown) == (3, 0x5EED, 0x0003, False)
    assert vars(args) == parsed
