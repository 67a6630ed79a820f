"""The Health view (key 7): findings by severity with a glyph beside each colour, fix and evidence under each,
server shares against the fair share; device text escaped; nothing to show said in words."""

from __future__ import annotations

from anycast_tui.lab.sim import SimFabric
from anycast_tui.model.health import Finding, HealthReport, ServerShare, Severity
from anycast_tui.session import SimSession
from anycast_tui.ui.app import AnycastApp
from anycast_tui.ui.healthview import HealthPanel, health_text

T0 = 1_764_000_000.0


class Runner:
    """What the app reads of healthwatch.HealthWatch: its newest report."""

    def __init__(self, report: HealthReport | None) -> None:
        self.report = report


REPORT = HealthReport(
    int(T0 * 1000),
    shares=(ServerShare("192.0.2.53/32", "server01", 0.25, 1 / 6, "hash space (10,000 synthetic flows)"),
            ServerShare("192.0.2.53/32", "server05", 0.125, 1 / 6, "hash space (10,000 synthetic flows)")),
    findings=(Finding("seed-zero", Severity.WARNING, "spine01", "hash seed 0: the kernel picks a random key",
                      "set net.ipv4.fib_multipath_hash_seed", ("spine01 seed 0",)),
              Finding("polarized", Severity.ERROR, "leaf01\n[red]x", "leaf01 sends 0 % to spine02",
                      "give leaf01 its own seed", tuple(f"line {i}" for i in range(12)))))


def test_findings_by_severity_with_glyphs_fix_evidence_and_shares():
    text = health_text(REPORT).plain
    lines = text.splitlines()
    assert lines[0] == "✗ 1 error · ! 1 warning"
    assert lines[1].startswith("✗ error   leaf01\\n[red]x  leaf01 sends 0 % to spine02")  # errors first, escaped
    assert "    fix: give leaf01 its own seed" in lines
    assert "    … 4 more lines" in lines  # 8 evidence lines shown of 12
    assert any(line.startswith("! warning spine01  hash seed 0") for line in lines)
    assert "192.0.2.53/32 server shares · hash space (10,000 synthetic flows) · imbalance 1.50×" in text
    assert any("server01" in line and "25.0 % (fair 16.7 %)" in line for line in lines)
    assert health_text(HealthReport(0)).plain == "✓ no findings: every check passed"
    assert health_text(None).plain == "checks not run yet"


async def test_key_7_shows_the_health_view():
    sim = SimFabric(clock=lambda: T0)
    session = SimSession(sim, clock=lambda: T0)
    session.poll()
    app = AnycastApp(session, clock=lambda: T0, health=Runner(REPORT))
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("7")
        await pilot.pause()
        assert app.view == "health"
        panel = app.query_one(HealthPanel)
        assert panel.report is REPORT and panel.region.area > 0
