"""``anycast-tui parse --as sflow|ipfix CAPTURE`` and ``calc --flows CAPTURE`` on the real pmacct captures, as a
user runs them (a subprocess), against the flows the capture script sent."""

from __future__ import annotations

import ipaddress
import json
import subprocess
import sys
from pathlib import Path

import pytest

from anycast_tui.model.flowarray import FlowArray
from anycast_tui.model.hashing import linux_multipath_hash
from test_calc_cli import BUCKETS, BUCKETS_JSON, GW, NEXTHOPS_JSON, POLICY, ROUTES_JSON, SEED

ROOT = Path(__file__).resolve().parents[2]
FIX = ROOT / "tests" / "fixtures" / "export"
META = json.loads((FIX / "sent.json").read_text())
CLI = [sys.executable, "-c", "import sys; from anycast_tui.cli import main; sys.exit(main())"]
SENT = {(f["proto"], f["src"], f["sport"], f["dst"], f["dport"]) for f in META["flows"]}


def cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([*CLI, *args], cwd=ROOT, capture_output=True, text=True, timeout=120,
                          stdin=subprocess.DEVNULL)


def test_parse_as_sflow_json_subprocess():
    done = cli("parse", "--as", "sflow", str(FIX / "sflow.pcap"), "--json")
    assert done.returncode == 0 and done.stderr == ""
    doc = json.loads(done.stdout)
    (exp,) = doc["exporters"]
    assert (exp["exporter"], exp["kind"], exp["malformed"]) == (META["sflow_agent"], "sflow", {})
    assert exp["datagrams"] == doc["udp_datagrams"] and exp["samples"] == len(doc["samples"])
    got = {(s["proto"], s["src"], s["sport"], s["dst"], s["dport"]) for s in doc["samples"]}
    assert SENT <= got
    r1 = META["router_ifindex"]["r1"]
    assert {s["output_if"] for s in doc["samples"] if (s["proto"], s["src"], s["sport"], s["dst"], s["dport"]) in SENT} == {r1}


@pytest.mark.parametrize("name, kind", [("ipfix.pcap", "ipfix"), ("netflow9.pcap", "netflow9")])
def test_parse_as_ipfix_json(name, kind):
    done = cli("parse", "--as", "ipfix", str(FIX / name), "--json")
    assert done.returncode == 0, done.stderr
    doc = json.loads(done.stdout)
    assert [e["kind"] for e in doc["exporters"]] == [kind]
    assert SENT <= {(s["proto"], s["src"], s["sport"], s["dst"], s["dport"]) for s in doc["samples"]}


def test_pcapng_is_detected_and_kinds_filtered():
    both = json.loads(cli("parse", str(FIX / "export.pcapng"), "--json").stdout)
    assert {e["kind"] for e in both["exporters"]} == {"sflow", "ipfix"}
    only = json.loads(cli("parse", "--as", "sflow", str(FIX / "export.pcapng"), "--json").stdout)
    assert {e["kind"] for e in only["exporters"]} == {"sflow"} and only["other_datagrams"] > 0
    text = cli("parse", str(FIX / "export.pcapng")).stdout
    assert "exporter 198.18.0.1 (sflow)" in text and "203.0.113.10:40000 -> 192.0.2.53:53" in text


def test_bad_capture_exit_2_one_line(tmp_path):
    bad = tmp_path / "x.pcap"
    bad.write_bytes((FIX / "sflow.pcap").read_bytes()[:100])
    done = cli("parse", "--as", "sflow", str(bad), "--json")
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr.count("\n") == 1 and "offset 24: record of" in done.stderr
    done = cli("parse", "--as", "ipfix", str(ROOT / "README.md"))
    assert done.returncode == 2 and "not a pcap or pcapng capture" in done.stderr


def test_malformed_datagrams_are_counted_per_exporter(tmp_path):
    data = bytearray((FIX / "sflow.pcap").read_bytes())
    # the first datagram's sample count (UDP payload at 24 + 16 + 14 + 20 + 8; the count is its 7th word)
    off = 24 + 16 + 14 + 20 + 8 + 24
    data[off:off + 4] = (10**6).to_bytes(4, "big")
    f = tmp_path / "m.pcap"
    f.write_bytes(bytes(data))
    doc = json.loads(cli("parse", str(f), "--json").stdout)
    (exp,) = doc["exporters"]
    assert list(exp["malformed"].values()) == [1] and "1000000 samples cannot fit" in next(iter(exp["malformed"]))
    assert exp["datagrams"] == doc["udp_datagrams"] - 1


def test_calc_places_the_captured_flows(tmp_path):
    for name, t in (("routes.json", ROUTES_JSON), ("nh.json", NEXTHOPS_JSON), ("b.json", BUCKETS_JSON)):
        (tmp_path / name).write_text(t)
    done = cli("calc", "--routes", str(tmp_path / "routes.json"), "--nexthops", str(tmp_path / "nh.json"),
               "--buckets", str(tmp_path / "b.json"), "--hash-policy", str(POLICY), "--hash-seed", str(SEED),
               "--flows", str(FIX / "sflow.pcap"), "--json")
    assert done.returncode == 0, done.stderr
    rows = json.loads(done.stdout)
    v4 = [r for r in rows if r["dst"] == "192.0.2.53"]
    assert {(6 if r["proto"] == "tcp" else 17, r["src"], r["sport"], r["dst"], r["dport"]) for r in v4} == \
        {k for k in SENT if k[3] == "192.0.2.53"}  # each sampled flow once
    fa = FlowArray.from_columns([4] * len(v4), [6 if r["proto"] == "tcp" else 17 for r in v4],
                                [list(ipaddress.ip_address(r["src"]).packed) for r in v4],
                                [list(ipaddress.ip_address(r["dst"]).packed) for r in v4],
                                [r["sport"] for r in v4], [r["dport"] for r in v4])
    h = linux_multipath_hash(fa, policy=POLICY, seed=SEED)
    assert [r["gateway"] for r in v4] == [GW[BUCKETS[x % 8]] for x in h]
