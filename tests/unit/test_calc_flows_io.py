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
