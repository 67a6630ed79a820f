"""calc's flows in and out: the outputs for a mixed IPv4/IPv6 flows file stay byte for byte what calc printed
before its flows I/O was vectorised (tests/fixtures/calc_flows/make.py made them with the per-row code)."""

from __future__ import annotations

from pathlib import Path

import pytest

from anycast_tui.cli import main

FX = Path(__file__).resolve().parent.parent / "fixtures" / "calc_flows"
TABLES = ["--routes", str(FX / "routes.json"), "--nexthops", str(FX / "nh.json"), "--buckets", str(FX / "buckets.json"),
          "--hash-policy", "1"]
RUNS = {"expected-mixed.json": ["--hash-seed", "0x5eed", "--flows", "flows-mixed.csv", "--json"],
        "expected-mixed-seed0.json": ["--hash-seed", "0", "--flows", "flows-mixed.csv", "--json"],
        "expected-mixed.txt": ["--hash-seed", "0x5eed", "--flows", "flows-mixed.csv"],
        "expected-plain.json": ["--hash-seed", "0x5eed", "--flows", "flows-plain.csv", "--json"],
        "expected-plain-seed0.txt": ["--hash-seed", "0", "--flows", "flows-plain.csv"]}


def calc(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(["calc", *TABLES, *argv])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.parametrize("expected", sorted(RUNS))
def test_output_is_byte_for_byte_the_per_row_codes(capsys, expected):
    argv = [str(FX / a) if a.endswith(".csv") else a for a in RUNS[expected]]
    code, out, err = calc(capsys, *argv)
    assert (code, err) == (0, "")
    assert out == (FX / expected).read_text()


def base(seed: str = "0x5eed") -> list[str]:
    return ["--hash-seed", seed]


def test_out_json_csv_and_parquet_hold_the_same_answers(capsys, tmp_path):
    import csv
    import json

    import pyarrow.parquet as pq

    flows = str(FX / "flows-mixed.csv")
    code, out, _ = calc(capsys, *base("0"), "--flows", flows, "--json")
    rows = json.loads(out)
    for name in ("a.json", "a.csv", "a.parquet"):
        code, printed, err = calc(capsys, *base("0"), "--flows", flows, "--out", str(tmp_path / name))
        assert (code, printed, err) == (0, "", "")
    assert (tmp_path / "a.json").read_text() == out
    with open(tmp_path / "a.csv", newline="") as fh:
        got = list(csv.DictReader(fh))
    assert len(got) == len(rows) == 400
    table = pq.read_table(tmp_path / "a.parquet").to_pylist()
    for want, c, p in zip(rows, got, table):
        for k, v in want.items():
            if k == "candidates":
                assert json.loads(c[k]) == v and p[k] == v
            else:
                assert c[k] == ("" if v is None else str(v)) and p[k] == v, k
        assert {k for k, v in c.items() if v} <= set(want) 
        assert {k for k, v in p.items() if v is not None} == {k for k, v in want.items() if v is not None}


def test_parquet_in_gives_the_answers_of_the_csv_and_is_told_by_its_magic(capsys, tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    flows = str(FX / "flows-mixed.csv")
    _, want, _ = calc(capsys, *base(), "--flows", flows, "--json")
    calc(capsys, *base(), "--flows", flows, "--out", str(tmp_path / "answers.parquet"))
    disguised = tmp_path / "answers.csv"  # calc's own output read back: its answer columns are ignored
    disguised.write_bytes((tmp_path / "answers.parquet").read_bytes())
    code, out, err = calc(capsys, *base(), "--flows", str(disguised), "--json")
    assert (code, err, out) == (0, "", want)
    # plain columns as a user writes them: integer proto and ports, other names' case, no optional columns
    t = pq.read_table(tmp_path / "answers.parquet")
    ints = pa.table({"PROTO": pa.array([6, 17, 47], pa.int32()), "Src": ["203.0.113.7", " 2001:db8:cafe::1 ", "203.0.113.8"],
                     "sport": pa.array([1, 2, 65535], pa.int64()), "dst": ["192.0.2.53", "2001:db8:53::53", "192.0.2.99"],
                     "dport": pa.array([53, 443, 0], pa.uint16())})
    pq.write_table(ints, tmp_path / "ints.parquet")
    code, out, err = calc(capsys, *base(), "--flows", str(tmp_path / "ints.parquet"), "--json")
    import json
    rows = json.loads(out)
    assert code == 0 and [(r["proto"], r["src"], r["sport"], r["dport"], r["outcome"]) for r in rows] == [
        ("tcp", "203.0.113.7", 1, 53, "forward"), ("udp", "2001:db8:cafe::1", 2, 443, "forward"),
        ("47", "203.0.113.8", 65535, 0, "drop")]
    assert t.num_rows == 400


@pytest.mark.parametrize("columns, words", [
    ({"sport": [1, 70000]}, "line 2: sport must be a port number 0-65535, not '70000'"),
    ({"src": ["203.0.113.1", "203.0.113.300"]}, "line 2: src is not an IP address: '203.0.113.300'"),
    ({"dst": ["192.0.2.53", None]}, "line 2: dst is not an IP address: ''"),
    ({"dst": ["192.0.2.53", "2001:db8::1"]}, "line 2: src and dst are of different address families"),
    ({"proto": ["tcp", "quic"]}, "line 2: unknown protocol 'quic'"),
    ({"sport": [1.0, 2.0]}, "column sport: expected integers or text, not double"),
    ({"colour": ["red", "blue"]}, "unknown column(s) 'colour'"),
])
def test_bad_parquet_rows_name_their_row(capsys, tmp_path, columns, words):
    import pyarrow as pa
    import pyarrow.parquet as pq

    cols = {"proto": ["tcp", "udp"], "src": ["203.0.113.1", "203.0.113.2"], "sport": [1, 2],
            "dst": ["192.0.2.53", "192.0.2.53"], "dport": [53, 53]}
    cols.update(columns)
    pq.write_table(pa.table(cols), tmp_path / "bad.parquet")
    code, out, err = calc(capsys, *base(), "--flows", str(tmp_path / "bad.parquet"), "--json")
    assert code == 2 and out == "" and len(err.strip().splitlines()) == 1
    assert "flows-parquet" in err and words in err


def test_not_parquet_after_its_magic_and_unknown_out_format(capsys, tmp_path):
    bad = tmp_path / "f.parquet"
    bad.write_bytes(b"PAR1 but nothing more")
    code, out, err = calc(capsys, *base(), "--flows", str(bad), "--json")
    assert code == 2 and "not a readable Parquet file" in err and len(err.strip().splitlines()) == 1
    code, out, err = calc(capsys, *base(), "--flows", str(FX / "flows-plain.csv"), "--out", str(tmp_path / "x.xlsx"))
    assert code == 2 and "unknown format" in err and not (tmp_path / "x.xlsx").exists()


def test_labels_are_escaped_as_json_and_csv_escape_them(capsys, tmp_path):
    import csv
    import json

    f = tmp_path / "labels.csv"
    f.write_text('proto,src,sport,dst,dport,ingress,group\n'
                 'tcp,203.0.113.1,1,192.0.2.53,53,"spine ""01"", east",ünï\\x\n'
                 'udp,203.0.113.2,2,192.0.2.53,53,,"a\tb"\n', encoding="utf-8")
    code, out, err = calc(capsys, *base(), "--flows", str(f), "--json")
    rows = json.loads(out)
    assert code == 0 and [(r["ingress"], r["group"]) for r in rows] == [('spine "01", east', "ünï\\x"), (None, "a\tb")]
    assert out.isascii()  # json.dumps' default: non-ASCII escaped
    calc(capsys, *base(), "--flows", str(f), "--out", str(tmp_path / "o.csv"))
    with open(tmp_path / "o.csv", newline="", encoding="utf-8") as fh:
        got = list(csv.DictReader(fh))
    assert [(r["ingress"], r["group"]) for r in got] == [('spine "01", east', "ünï\\x"), ("", "a\tb")]


def test_parquet_on_standard_input_and_an_empty_flow_set(capsys, tmp_path):
    import os
    import subprocess
    import sys

    calc(capsys, *base(), "--flows", str(FX / "flows-mixed.csv"), "--out", str(tmp_path / "m.parquet"))
    env = {**os.environ, "PYTHONPATH": str(FX.parents[2]) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    proc = subprocess.run([sys.executable, "-m", "anycast_tui", "calc", *TABLES, *base(), "--flows", "-", "--json"],
                          input=(tmp_path / "m.parquet").read_bytes(), capture_output=True, env=env, timeout=120)
    assert proc.returncode == 0 and proc.stdout.decode() == (FX / "expected-mixed.json").read_text()
    empty = tmp_path / "empty.csv"
    empty.write_text("proto,src,sport,dst,dport\n")
    code, out, _ = calc(capsys, *base(), "--flows", str(empty), "--json")
    assert (code, out) == (0, "[]\n")
    code, out, _ = calc(capsys, *base(), "--flows", str(empty))
    assert out == "proto  src  sport  dst  dport  next hop  placement\n"
    calc(capsys, *base(), "--flows", str(empty), "--out", str(tmp_path / "e.parquet"))
    code, out, _ = calc(capsys, *base(), "--flows", str(tmp_path / "e.parquet"), "--json")
    assert (code, out) == (0, "[]\n")


def test_parquet_row_groups_and_null_labels_read_as_the_csv(capsys, tmp_path):
    import pyarrow as pa
    import pyarrow.csv as pacsv
    import pyarrow.parquet as pq

    _, want, _ = calc(capsys, *base(), "--flows", str(FX / "flows-mixed.csv"), "--json")
    text = "".join(ln for ln in (FX / "flows-mixed.csv").read_text().splitlines(True)
                   if ln.strip() and not ln.lstrip().startswith("#"))
    (tmp_path / "plain.csv").write_text(text)
    t = pacsv.read_csv(tmp_path / "plain.csv", convert_options=pacsv.ConvertOptions(
        column_types={c: pa.string() for c in ("proto", " src ", "dst", "ingress", "group")}, strings_can_be_null=True))
    assert t.column("ingress").null_count > 0  # empty cells: null here, "" in the CSV; both are no ingress
    pq.write_table(t, tmp_path / "groups.parquet", row_group_size=37)  # 11 row groups, a dictionary each
    code, out, err = calc(capsys, *base(), "--flows", str(tmp_path / "groups.parquet"), "--json")
    assert (code, err) == (0, "") and out == want
