"""The Health view (key 7): findings by severity, one line each with a glyph beside each colour, navigable with
the keys (↑/↓, j/k, home/end, enter: the selected finding's evidence shown or hidden), and under the selected one
its own evidence — the shares bar against the fair mark for an imbalance, the device's next-hop distribution
against uniform input for a polarized device, the sessions for outbound TCP; server shares per prefix below;
device text escaped; nothing to show said in words.  The report comes from the real checks on a simulated fabric
with hazards built in (same seed on spines and leaves of two servers; a server dialling out from the anycast
address)."""

from __future__ import annotations

from dataclasses import replace

from anycast_tui.lab.sim import SimConfig, SimFabric
from anycast_tui.model.health import Finding, HealthReport, ServerShare, Severity, evaluate
from anycast_tui.model.types import Flow
from anycast_tui.session import SimSession
from anycast_tui.ui.app import AnycastApp
from anycast_tui.ui.healthview import HealthPanel, health_text

T0 = 1_764_000_000.0
ANY = "192.0.2.53/32"


class Runner:
    """What the app reads of healthwatch.HealthWatch: its newest report."""

    def __init__(self, report: HealthReport | None) -> None:
        self.report = report


def _hazards() -> HealthReport:
    seeds = tuple((n, 7) for n in ("spine01", "spine02", "leaf01", "leaf02", "leaf03", "leaf04"))
    snap = SimFabric(SimConfig(servers_per_leaf=2, hash_seeds=seeds)).snapshot(int(T0 * 1000))
    out = (Flow(6, "198.51.100.7", 443, "192.0.2.53", 45678), Flow(6, "198.51.100.8", 443, "192.0.2.53", 45679))
    snap = replace(snap, devices={**snap.devices, "server02": replace(snap.devices["server02"], flows=out)})
    rep = evaluate(snap)
    # device text that looks like markup, as a device could send it: shown as it is
    odd = Finding("polarized", Severity.ERROR, "leaf01\n[red]x", "leaf01 sends 0 % to [b]spine02",
                  "give leaf01 its own seed", tuple(f"line {i} [i]" for i in range(14)))
    return replace(rep, findings=rep.findings + (odd,))


REPORT = _hazards()


def test_findings_one_line_each_by_severity_with_the_selected_ones_evidence():
    text = health_text(REPORT).plain
    lines = text.splitlines()
    assert lines[0] == "✗ 2 error · ! 15 warning   ↑↓ select · enter evidence"
    # errors first (by rule); the first is selected (▶), its evidence under it
    assert lines[1].startswith("▶ ✗ error   server02  server02 opened 2 TCP connections from the anycast address")
    assert next(x for x in lines if "[red]" in x).startswith("  ✗ error   leaf01\\n[red]x  leaf01 sends 0 % to [b]spine02")
    assert sum(1 for x in lines if x.startswith("  ! warning ")) == 15  # the others: one line each, no evidence
    odd = health_text(REPORT, selected=("polarized", "leaf01\n[red]x")).plain.splitlines()
    assert "    fix: give leaf01 its own seed" in odd
    assert "      line 0 [i]" in odd and "      … 2 more lines" in odd  # 12 evidence lines shown of 14
    assert "192.0.2.53/32 server shares · hash space (10,000 synthetic flows) · imbalance 2.05×" in text
    assert health_text(HealthReport(0)).plain == "✓ no findings: every check passed"
    assert health_text(None).plain == "checks not run yet"


def test_each_rule_shows_its_own_evidence():
    def detail(rule: str, subject: str) -> list[str]:
        lines = health_text(REPORT, selected=(rule, subject)).plain.splitlines()
        at = next(i for i, x in enumerate(lines) if x.startswith("▶ "))
        end = next(i for i in range(at + 1, len(lines)) if not lines[i].startswith("    ") or not lines[i])
        return lines[at + 1:end]

    # outbound TCP: the sessions
    d = detail("outbound-tcp-anycast", "server02")
    assert d[-3:] == ["    sessions (2):", "      tcp 192.0.2.53:45678 → 198.51.100.7:443",
                      "      tcp 192.0.2.53:45679 → 198.51.100.8:443"]
    # polarization: leaf01's next hops, the flows that reach it against uniform input (policy 1, seed 7 on the
    # spines and leaf01: every flow reaching leaf01 hashes to its first server)
    d = detail("polarized", f"leaf01 {ANY}")
    assert d[0].startswith("    leaf01 and spine01, spine02 use policy 1 with the same seed")
    i = d.index(next(x for x in d if x.startswith("    the 2,390 flows reaching leaf01 by next hop, │ uniform input")))
    assert d[i + 1] == "    server01   ████████████┃███████████ 100.0 % (uniform 50.0 %)"
    assert d[i + 2] == "    server02               │              0.0 % (uniform 50.0 %)  ! < half"
    assert "      leaf01: policy 1, seed 7" in d  # the hash settings stay; the per-hop lines became bars
    # imbalance: the shares bars against the fair mark (1/8 each: │ at cell 3)
    d = detail("imbalance", ANY)
    assert any(x.startswith("    server shares, │ fair · hash space (10,000 synthetic flows)") for x in d)
    bars = [x for x in d if x.startswith("    server0")]
    assert len(bars) == 8 and all(x[15:39][3] in "│┃" for x in bars)
    assert bars[-1].endswith("  0.0 % (fair 12.5 %)")


def test_sampled_shares_show_the_hash_space_beside():
    rep = HealthReport(0, shares=(ServerShare(ANY, "server01", 0.8, 0.25, "sampled traffic (…)", 0.25, 120.0, 300),),
                       findings=(Finding("imbalance", Severity.WARNING, ANY, "s", "f"),))
    # 80 % of 24 cells filled, the fair mark (25 %: cell 6) inside them
    assert "    server01   ██████┃████████████       80.0 % (fair 25.0 %, hash 25.0 %)  ! >1.5× fair" \
        in health_text(rep).plain.splitlines()


def _app() -> AnycastApp:
    sim = SimFabric(clock=lambda: T0)
    session = SimSession(sim, clock=lambda: T0)
    session.poll()
    return AnycastApp(session, clock=lambda: T0, health=Runner(REPORT))


async def test_keys_select_findings_show_their_evidence_and_scroll_to_them():
    app = _app()
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("7")
        await pilot.pause()
        panel = app.query_one(HealthPanel)
        assert app.view == "health" and panel.report is REPORT and panel.region.area > 0
        assert app.focused is panel  # its keys work at once
        assert panel.selected_finding().key == ("outbound-tcp-anycast", "server02")
        await pilot.press("down")
        assert panel.selected_finding().subject == "leaf01\n[red]x"
        await pilot.press("j", "j", "j", "j")
        assert panel.selected_finding().key == ("polarized", f"leaf01 {ANY}")
        await pilot.pause()
        scroll = app.query_one("#health")
        shown = scroll.scroll_offset.y
        assert shown > 0  # scrolled down to the selection
        await pilot.press("end")
        await pilot.pause()
        assert panel.selected_finding().key == ("same-seed-consecutive-tiers", "leaf04")
        assert scroll.scroll_offset.y > shown
        at, size = panel.selection_lines
        top = panel.virtual_region.y + panel.gutter.top + at
        assert scroll.scroll_offset.y <= top < scroll.scroll_offset.y + scroll.scrollable_content_region.height
        await pilot.press("k")
        assert panel.selected_finding().key == ("same-seed-consecutive-tiers", "leaf03")
        await pilot.press("enter")
        assert not panel.expanded
        await pilot.press("enter", "home")
        assert panel.expanded and panel.selected_finding().subject == "server02"
        await pilot.pause()
        assert scroll.scroll_offset.y == 0
        await pilot.press("escape")  # the app's: back to the Fabric view
        assert app.view == "fabric"


def test_health_view_polarized_selected_80x24(snap_compare):
    async def run_before(pilot) -> None:  # noqa: ANN001
        await pilot.press("7")
        await pilot.pause()
        await pilot.press("down", "down", "down", "down", "down")
        await pilot.pause()

    assert snap_compare(_app(), terminal_size=(80, 24), run_before=run_before)


def test_health_view_imbalance_selected_80x24(snap_compare):
    async def run_before(pilot) -> None:  # noqa: ANN001
        await pilot.press("7")
        await pilot.pause()
        await pilot.press("down", "down", "down")
        await pilot.pause()

    assert snap_compare(_app(), terminal_size=(80, 24), run_before=run_before)
