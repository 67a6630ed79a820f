"""``check --recording FILE --at T``: the checks on the fabric as recorded at a moment (a hazard appearing
mid-recording); a recording holds no live connections, and the report says so."""

from __future__ import annotations

import json
from dataclasses import replace

from anycast_tui.cli import main
from anycast_tui.lab.sim import SimFabric
from anycast_tui.model.timeline import Timeline
from anycast_tui.model.types import Flow
from anycast_tui.record.writer import Recorder

T0 = 1_790_000_000_000
CONN = Flow(6, "203.0.113.9", 40000, "192.0.2.53", 443)


def _record(path) -> None:  # noqa: ANN001
    """41 ticks 10 s apart; server01 holds CONN throughout (not recorded); spine01's seed becomes 0 at tick 20
    (t = +200 s)."""
    clock = [T0]
    sim = SimFabric(clock=lambda: clock[0] / 1000)
    timeline = Timeline(anycast_prefixes=("192.0.2.53/32",), clock=lambda: clock[0] / 1000)
    rec = Recorder(path, keyframe_every=8, flush_s=None, clock=lambda: clock[0] / 1000)
    rec.attach(timeline)
    for i in range(41):
        if i == 20:
            sim.set_hash("spine01", seed=0)
        for name in sim.devices:
            st = sim.device_state(name, clock[0])
            timeline.update(replace(st, flows=(CONN,)) if name == "server01" else st)
        rec.flush()
        clock[0] += 10_000
    rec.close()


def _check(capsys, *args: str) -> tuple[int, dict]:  # noqa: ANN001
    code = main(["check", *args, "--json"])
    return code, json.loads(capsys.readouterr().out)


def test_check_at_a_moment_of_a_recording(tmp_path, capsys):
    path = tmp_path / "s.atrec"
    _record(path)
    code, doc = _check(capsys, "--recording", str(path), "--at", "+100")
    assert code == 0 and doc["findings"] == []
    assert doc["source"] == {"recording": str(path), "at_ms": T0 + 100_000}
    assert any("a recording holds no live connections" in n for n in doc["notes"])
    code, doc = _check(capsys, "--recording", str(path))  # default: the end (+400 s)
    assert code == 0 and doc["taken_at_ms"] == T0 + 400_000
    assert [(f["rule"], f["subject"]) for f in doc["findings"]] == [("seed-zero", "spine01")]
    code, doc = _check(capsys, "--recording", str(path), "--at", "+200", "--fail-on", "warning")
    assert code == 1 and doc["findings"][0]["rule"] == "seed-zero"
    assert main(["check", "--recording", str(path), "--at", "yesterday"]) == 2
    assert main(["check", "--recording", str(tmp_path / "none.atrec")]) == 2


def test_the_table_escapes_device_text():
    """A device's error text with a newline and an escape sequence stays one escaped line in the table."""
    from anycast_tui.commands.check import table
    from anycast_tui.model.health import evaluate
    from anycast_tui.model.types import Health, HealthStatus

    sim = SimFabric()
    snap = sim.snapshot(T0)
    bad = Health(HealthStatus.ERROR, error="refused\n\x1b[2Jfake line")
    snap = replace(snap, devices={**snap.devices, "leaf02": replace(snap.devices["leaf02"], health=bad)})
    text = table(snap, evaluate(snap), {"config": "fabric.toml"})
    assert "\x1b" not in text and "\\x1b[2J" in text
    assert not any(line.startswith("fake line") for line in text.splitlines())
    assert text.splitlines()[0] == ("check: fabric.toml; devices: 9 of 10 answered; did not answer: "
                                    "leaf02 (refused\\n\\x1b[2Jfake line)")
