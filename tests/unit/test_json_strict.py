"""Issue 16 item 3: every ``--json`` output is strict JSON (no NaN/Infinity), written in one place."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from anycast_tui.cli import CliError, main
from anycast_tui.commands import jsonout

COMMANDS = Path(__file__).resolve().parents[2] / "anycast_tui" / "commands"


def strict(text: str):
    """json.loads that refuses NaN, Infinity and -Infinity, as a strict (RFC 8259) reader does."""
    def refuse(name):
        raise ValueError(f"not JSON: {name}")
    return json.loads(text, parse_constant=refuse)


def run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_a_1e999_idle_time_never_reaches_the_output_as_infinity(tmp_path, capsys):
    # was: "idle_time": Infinity on stdout, exit 0
    f = tmp_path / "buckets.json"
    f.write_text('[{"id":10,"bucket":{"index":0,"idle_time":1e999,"nhid":3},"flags":[]}]')
    code, out, err = run(capsys, "parse", str(f), "--json")
    assert code == 2 and out == "" and "Infinity" not in out
    assert err.count("\n") == 1 and "idle_time inf out of range" in err


def test_parse_json_output_is_strict(tmp_path, capsys):
    f = tmp_path / "buckets.json"
    f.write_text('[{"id":10,"bucket":{"index":0,"idle_time":0.25,"nhid":3},"flags":[]}]')
    code, out, _ = run(capsys, "parse", str(f), "--json")
    assert code == 0 and strict(out)[0]["idle_time"] == 0.25


@pytest.mark.parametrize("value", [float("inf"), float("-inf"), float("nan")])
def test_dumps_refuses_non_finite_numbers_naming_their_place(value):
    with pytest.raises(CliError) as ei:
        jsonout.dumps({"events": [{"moved": 1}, {"moved": 2, "share": value}]}, indent=1)
    assert ei.value.code == 1
    assert str(ei.value) == f"--json: $.events[1].share ({value!r}) is not a finite number, which JSON cannot hold " \
                            "(please report)"


def test_lines_is_one_row_a_line_and_strict():
    assert jsonout.lines([]) == "[]"
    assert jsonout.lines([{"a": 1}, {"a": 2.5}]) == '[\n{"a": 1},\n{"a": 2.5}\n]'
    with pytest.raises(CliError, match=r"\$\[1\]\.a"):
        jsonout.lines([{"a": 1}, {"a": float("nan")}])


def test_no_command_writes_json_but_through_jsonout():
    pattern = re.compile(r"(print|stdout\.write)\(\s*json\.dumps|json_lines\(")
    offenders = [f"{p.name}:{n}" for p in sorted(COMMANDS.glob("*.py")) if p.name != "jsonout.py"
                 for n, line in enumerate(p.read_text().splitlines(), 1) if pattern.search(line)]
    assert offenders == []


@pytest.mark.parametrize("command", ["calc", "whatif"])
def test_calc_and_whatif_json_is_strict(tmp_path, capsys, command):
    routes = tmp_path / "routes.txt"
    routes.write_text("192.0.2.54 proto bgp\n\tnexthop via 198.19.0.2 dev nh0 weight 1\n"
                      "\tnexthop via 198.19.1.2 dev nh1 weight 3\n")
    code, out, err = run(capsys, command, "--routes", str(routes), "--hash-policy", "1", "--hash-seed", "1",
                         "-p", "udp", "-s", "203.0.113.10", "--sport", "1", "-d", "192.0.2.54", "--dport", "53",
                         "--json")
    assert code == 0 and err == ""
    doc = strict(out)
    assert doc[0]["gateway"] in ("198.19.0.2", "198.19.1.2") if command == "calc" else doc["flows"] == 1
