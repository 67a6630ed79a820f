"""The vectorised flows CSV reader against the per-row reference (``flowcsv.parse_lines``): the same flows and
labels, or the same error on the same line, whatever the file holds."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from anycast_tui.parse.errors import ParseError
from anycast_tui.parse.flowcsv import parse_flows_bytes, parse_lines

CELLS = {
    "proto": ["tcp", "udp", "UDP", " tcp ", "6", "17", "255", "256", "0", "icmpv6", "quic", "", "0x6", "٣", "\ttcp"],
    "src": ["203.0.113.7", "203.0.113.255", " 203.0.113.1 ", "203.0.113.01", "203.0.113.256", "1.2.3", "1.2.3.4.5",
            "0.0.0.0", "255.255.255.255", "2001:db8::1", "2001:DB8:0:0::1", "::ffff:1.2.3.4", "fe80::1%eth0", "",
            "2001:db8::g", "1.2.3.4\xa0", "\xa01.2.3.4", "1..2.3", ".1.2.3", "1.2.3.4.", "1.2.3.4\x1f"],
    "sport": ["0", "65535", "65536", "00001", "000001", "-1", " 80 ", "", "1e3", "８０", "80\xa0", "+5"],
    "ingress": ["spine01", "", " leaf 03 ", "ünï", "a" * 300, "\xa0x\xa0", "#x"],
}
CELLS["dst"] = CELLS["src"]
CELLS["dport"] = CELLS["sport"]
CELLS["group"] = CELLS["ingress"]
JUNK = ["", "   ", "# comment", "  # comment", "\xa0# nbsp comment", "\xa0", '"tcp",1.2.3.4,1,5.6.7.8,2',
        "tcp,1.2.3.4,1,5.6.7.8", "tcp,1.2.3.4,1,5.6.7.8,2,x,y,z", '"unterminated', "a\0b", "\x1f", "\x0c"]


def same(data: bytes) -> None:
    try:
        want = parse_lines(data.decode("utf-8"))
    except ParseError as exc:
        with pytest.raises(ParseError) as got:
            parse_flows_bytes(data)
        assert (got.value.line, got.value.reason, str(got.value)) == (exc.line, exc.reason, str(exc))
        return
    flows, meta = parse_flows_bytes(data)
    for c in ("family", "proto", "src", "dst", "sport", "dport", "flowlabel"):
        assert np.array_equal(getattr(flows, c), getattr(want[0], c)), c
    for c in ("ingress", "group"):
        a, b = getattr(meta, c), getattr(want[1], c)
        assert (a is None) == (b is None) and (a is None or list(a) == list(b)), c


row = st.fixed_dictionaries({c: st.sampled_from(v) for c, v in CELLS.items()})


@settings(max_examples=300, deadline=None)
@given(cols=st.permutations(["proto", "src", "sport", "dst", "dport", "ingress", "group"]).map(lambda p: p[:5 + len(p) % 3]),
       rows=st.lists(st.one_of(row, st.sampled_from(JUNK)), max_size=12),
       valid=st.lists(row, max_size=4), eol=st.sampled_from(["\n", "\r\n", "\r"]), upper=st.booleans(),
       final_eol=st.booleans())
def test_fast_reader_is_the_reference(cols, rows, valid, eol, upper, final_eol):
    cols = [c for c in cols if c in ("proto", "src", "sport", "dst", "dport")] + [c for c in cols if c in ("ingress", "group")]
    head = ",".join(c.upper() if upper else c for c in cols)
    lines = [head]
    for r in rows + valid:
        lines.append(r if isinstance(r, str) else ",".join(r[c] for c in cols))
    same((eol.join(lines) + (eol if final_eol else "")).encode("utf-8"))


@pytest.mark.parametrize("text", [
    "", "# only a comment\n", "proto,src,sport,dst,dport\n", "proto,src,sport,dst,dport", "\n\nPROTO , Src,sport,dst,dport\n",
    "proto,src,sport,dst,dport,colour\n", "proto,src,sport,dst,dport,src\n", "proto,src,dst\n",
    "proto,src,sport,dst,dport\ntcp,1.2.3.4,1,2001:db8::1,2\n",
    "proto,src,sport,dst,dport\ntcp,1.2.3.4,1,5.6.7.8,2\x0btcp,1.2.3.4,1,5.6.7.8,2\n",
    "proto,src,sport,dst,dport\ntcp,1.2.3.4,1,5.6.7.8,2\u2028udp,1.2.3.4,1,5.6.7.8,2\n",
    "proto,src,sport,dst,dport,ingress\ntcp,1.2.3.4,1,5.6.7.8,2,\ntcp,1.2.3.4,1,5.6.7.8,2, \n",
])
def test_edges_are_the_reference(text):
    same(text.encode("utf-8"))


def test_not_utf8_is_not_a_text_file():
    with pytest.raises(ParseError, match="not a text file"):
        parse_flows_bytes(b"proto,src,sport,dst,dport\n\xff\n")


PARQUET_CELLS = {c: v + [None] for c, v in CELLS.items()}


@settings(max_examples=150, deadline=None)
@given(rows=st.lists(st.fixed_dictionaries({c: st.sampled_from(v) for c, v in PARQUET_CELLS.items()}), max_size=10),
       labels=st.booleans(), group_size=st.integers(1, 4))
def test_parquet_reader_is_the_reference(rows, labels, group_size):
    """Parquet text columns (dictionary-encoded per row group, nulls allowed) give the flows of the per-row
    reference code on the same cells (null = empty), or its error on the first bad row, numbered from 1."""
    import io

    import pyarrow as pa
    import pyarrow.parquet as pq

    from anycast_tui.model.flows import flows_to_array
    from anycast_tui.parse.flowcsv import row_flow
    from anycast_tui.parse.flowparquet import read_flows_parquet

    cols = ["proto", "src", "sport", "dst", "dport"] + (["ingress", "group"] if labels else [])
    sink = io.BytesIO()
    pq.write_table(pa.table({c: pa.array([r[c] for r in rows], pa.string()) for c in cols}), sink,
                   row_group_size=group_size)
    want: list = []
    error = None
    for i, r in enumerate(rows, start=1):
        try:
            want.append(row_flow({c: (r[c] or "").strip() for c in cols}))
        except ValueError as exc:
            error = (i, str(exc))
            break
    if error:
        with pytest.raises(ParseError) as got:
            read_flows_parquet(sink.getvalue())
        assert (got.value.line, got.value.reason) == error
        return
    flows, meta = read_flows_parquet(sink.getvalue())
    ref, ref_meta = flows_to_array(want)
    for c in ("family", "proto", "src", "dst", "sport", "dport"):
        assert np.array_equal(getattr(flows, c), getattr(ref, c)), c
    for c in ("ingress", "group"):
        a, b = getattr(meta, c), getattr(ref_meta, c)
        assert (a is None) == (b is None) and (a is None or list(a) == list(b)), c
