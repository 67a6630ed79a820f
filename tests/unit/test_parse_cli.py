"""``anycast-tui parse``: output forms, stdin, one-line errors."""

from __future__ import annotations

import io
import json
import sys
from pathlib import Path

import pytest

from anycast_tui.cli import main

FIX = Path(__file__).resolve().parent.parent / "fixtures" / "parse"


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(["parse", *argv])
    cap = capsys.readouterr()
    return code, cap.out, cap.err


def test_readable_output(capsys):
    code, out, err = run(capsys, str(FIX / "kernel-route.txt"))
    assert code == 0 and err == ""
    lines = out.splitlines()
    i = next(n for n, ln in enumerate(lines) if ln.startswith("192.0.2.53/32"))
    assert lines[i + 1].strip() == "via 198.18.1.2 dev v1 weight 3"
    assert lines[i + 3].strip() == "via 198.18.3.2 dev v3 weight 1 [linkdown]"


def test_json_output_equals_for_text_and_json_input(capsys):
    _, a, _ = run(capsys, str(FIX / "kernel-nexthop.txt"), "--json")
    _, b, _ = run(capsys, str(FIX / "kernel-nexthop.json"), "--json")
    assert json.loads(a) == json.loads(b) and json.loads(a)["groups"]


def test_stdin(capsys, monkeypatch):
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(b"blackhole 192.0.2.60 \n")))
    code, out, _ = run(capsys, "-", "--json")
    assert code == 0 and json.loads(out)[0]["type"] == "blackhole"


def test_bad_input_one_line_exit_2(capsys, tmp_path):
    f = tmp_path / "routes.txt"
    f.write_text("192.0.2.1 dev v1\n" * 6 + "foo bar\n")
    code, out, err = run(capsys, str(f), "--as", "ip-route")
    assert code == 2 and out == ""
    assert err == f"anycast-tui parse: {f}: line 7: unexpected token 'foo' in route\n"


def test_undetectable_and_missing_file(capsys, tmp_path):
    f = tmp_path / "x.txt"
    f.write_text("hello\n")
    code, _, err = run(capsys, str(f))
    assert code == 2 and err == f"anycast-tui parse: {f}: cannot tell what command produced this; use --as KIND\n"
    code, _, err = run(capsys, str(tmp_path / "nope"))
    assert code == 2 and err.count("\n") == 1 and "No such file" in err


def test_binary_garbage_is_refused_not_crashed(capsys, tmp_path):
    f = tmp_path / "bin"
    f.write_bytes(b"\x00\xff\xfe\n" * 10)
    code, _, err = run(capsys, str(f), "--as", "ip-link")
    assert code == 2 and err.count("\n") == 1


def test_help_has_an_example(capsys):
    with pytest.raises(SystemExit) as ei:
        main(["parse", "--help"])
    assert ei.value.code == 0
    out = capsys.readouterr().out
    assert "examples:" in out and "anycast-tui parse routes.json --json" in out and "ip-nexthop-bucket-json" in out


def test_text_mode_prints_sockets_conntrack_and_bgp(corpus_dir, capsys):
    """Every record type has readable lines, not only --json."""
    from anycast_tui.cli import main

    for name in ("iproute2__ss-t__1.txt", "conntracktools__conntrack-L__1.txt", "frr__vtysh-show-bgp-ipv4-json__1.json"):
        assert main(["parse", str(corpus_dir / name)]) == 0
        out = capsys.readouterr().out
        assert out.strip(), name
