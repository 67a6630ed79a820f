"""Flow sets: CSV round trip, errors with line numbers, synthetic populations, the seed's sample flows."""

from __future__ import annotations

import numpy as np
import pytest

from anycast_tui.model.flows import (sample_flows, synthetic_flows, write_flows_csv)
from anycast_tui.parse.errors import ParseError
from anycast_tui.parse.flowcsv import read_flows_csv

CSV = """proto,src,sport,dst,dport,ingress,group
tcp,203.0.113.7,40000,192.0.2.53,443,spine01,ftp-1
udp,203.0.113.8,32700,192.0.2.53,53,spine02,
# a comment
47,2001:db8::1,0,2001:db8::53,0,spine01,ftp-1
"""


def test_csv_round_trip_keeps_every_column(tmp_path):
    flows, meta = read_flows_csv(CSV)
    assert len(flows) == 3
    f0, f2 = flows.flow(0), flows.flow(2)
    assert (f0.proto, f0.src, f0.sport, f0.dst, f0.dport) == (6, "203.0.113.7", 40000, "192.0.2.53", 443)
    assert (f2.proto, f2.src, f2.dst) == (47, "2001:db8::1", "2001:db8::53")
    assert list(meta.ingress) == ["spine01", "spine02", "spine01"]
    assert list(meta.group) == ["ftp-1", None, "ftp-1"]
    path = tmp_path / "flows.csv"
    text = write_flows_csv(flows, meta, path)
    again, meta2 = read_flows_csv(path)
    assert path.read_text() == text
    assert [again.flow(i) for i in range(3)] == [flows.flow(i) for i in range(3)]
    assert list(meta2.ingress) == list(meta.ingress) and list(meta2.group) == list(meta.group)


def test_columns_in_any_order_and_optional_columns_absent():
    flows, meta = read_flows_csv("dst,dport,src,sport,proto\n192.0.2.53,53,203.0.113.1,1234,UDP\n")
    assert flows.flow(0).proto == 17 and flows.flow(0).sport == 1234
    assert meta.ingress is None and meta.group is None


@pytest.mark.parametrize("body, line, words", [
    ("tcp,203.0.113.7,40000,192.0.2.53\n", 2, "expected 5 fields"),
    ("tcp,203.0.113.7,40000,192.0.2.53,443\nquic,203.0.113.7,1,192.0.2.53,443\n", 3, "unknown protocol"),
    ("tcp,203.0.113.7,70000,192.0.2.53,443\n", 2, "sport"),
    ("tcp,203.0.113.7,1,192.0.2.300,443\n", 2, "dst is not an IP address"),
    ("tcp,203.0.113.7,1,2001:db8::1,443\n", 2, "different address families"),
    ("\n\ntcp,203.0.113.7,-1,192.0.2.53,443\n", 4, "sport"),
])
def test_bad_lines_name_their_line(body, line, words):
    with pytest.raises(ParseError) as exc:
        read_flows_csv("proto,src,sport,dst,dport\n" + body)
    assert exc.value.line == line
    assert words in exc.value.reason
    assert f"line {line}" in str(exc.value)


def test_bad_header_and_empty_file():
    with pytest.raises(ParseError, match="lacks column"):
        read_flows_csv("proto,src,dst\ntcp,1.2.3.4,5.6.7.8\n")
    with pytest.raises(ParseError, match="unknown column"):
        read_flows_csv("proto,src,sport,dst,dport,colour\n")
    with pytest.raises(ParseError, match="empty"):
        read_flows_csv("# nothing\n\n")


def test_synthetic_flows_are_reproducible_and_in_documentation_ranges():
    a = synthetic_flows(1000, 5000, tcp_share=0.3, dports=(53, 443, 853), seed=5)
    b = synthetic_flows(1000, 5000, tcp_share=0.3, dports=(53, 443, 853), seed=5)
    for col in ("family", "proto", "src", "dst", "sport", "dport"):
        assert np.array_equal(getattr(a, col), getattr(b, col))
    assert (a.src[:, :3] == [203, 0, 113]).all() and (a.src[:, 3] >= 1).all() and (a.src[:, 3] <= 254).all()
    assert len(np.unique(a.src[:, 3])) == 254  # more than 254 clients: every address in use
    assert (a.dst[:, :4] == [192, 0, 2, 53]).all()
    assert set(np.unique(a.dport)) == {53, 443, 853}
    share = (a.proto == 6).mean()
    assert 0.25 < share < 0.35 and set(np.unique(a.proto)) == {6, 17}
    assert not np.array_equal(synthetic_flows(1000, 5000, seed=6).sport, a.sport)


def test_few_clients_use_few_addresses():
    f = synthetic_flows(3, 300, seed=1)
    assert set(f.src[:, 3]) == {1, 2, 3}


def test_sample_flows_are_the_seed_documents():
    f = sample_flows()
    assert [(x.proto, x.sport, x.dst, x.dport) for x in f.flows()] == [(17, 32700, "192.0.2.53", 53),
                                                                       (17, 31884, "192.0.2.53", 53)]
    assert f.flow(0).src == f.flow(1).src
