"""The Health view: the fabric's findings by severity (``model.health``), each with its fix and evidence, and
every anycast prefix's server shares against the fair share.  Colour-blind safe: a glyph beside each colour
(``✗`` error, ``!`` warning, ``i`` info); device text is data (escaped, one line)."""

from __future__ import annotations

from rich.text import Text

from anycast_tui.model.health import Finding, HealthReport, Severity
from anycast_tui.safetext import safe
from anycast_tui.ui.palette import BAD, INFO, OK, WARN
from anycast_tui.ui.widgets import Panel

GLYPH = {Severity.ERROR: ("✗", BAD), Severity.WARNING: ("!", WARN), Severity.INFO: ("i", INFO)}
EVIDENCE_SHOWN = 8  # evidence lines per finding (the rest counted)
BAR_W = 24


def finding_text(f: Finding) -> Text:
    glyph, style = GLYPH[f.severity]
    out = Text(no_wrap=True, overflow="ellipsis")
    out.append(f"{glyph} {f.severity.label:<8}", style=f"bold {style}")
    out.append(f"{safe(f.subject)}  ", style="bold")
    out.append(safe(f.summary))
    out.append(f"  [{f.rule}]", style="dim")
    return out


def health_text(report: HealthReport | None, waiting: str = "checks not run yet") -> Text:
    out = Text()
    if report is None:
        out.append(waiting, style="dim")
        return out
    found = sorted(report.findings, key=lambda f: (-int(f.severity), f.rule, f.subject))
    counts = {s: sum(1 for f in found if f.severity is s) for s in Severity}
    if not found:
        out.append("✓ no findings: every check passed", style=f"bold {OK}")
    else:
        out.append(" · ".join(f"{GLYPH[s][0]} {counts[s]} {s.label}" for s in reversed(Severity) if counts[s]),
                   style="bold")
    for f in found:
        out.append("\n")
        out.append_text(finding_text(f))
        if f.fix:
            out.append("\n    fix: ", style="dim")
            out.append(safe(f.fix))
        for line in f.evidence[:EVIDENCE_SHOWN]:
            out.append("\n    ")
            out.append(safe(line), style="dim")
        if len(f.evidence) > EVIDENCE_SHOWN:
            out.append(f"\n    … {len(f.evidence) - EVIDENCE_SHOWN} more lines", style="dim")
    prefixes = sorted({s.prefix for s in report.shares})
    for prefix in prefixes:
        shares = sorted((s for s in report.shares if s.prefix == prefix), key=lambda s: (-s.share, s.server))
        imb = report.imbalance(prefix)
        out.append("\n\n")
        out.append(f"{prefix} server shares", style="bold")
        if shares:
            out.append(f" · {safe(shares[0].basis)}", style="dim")
        if imb is not None:
            out.append(f" · imbalance {imb:.2f}×", style=WARN if imb > 1.5 else "")
        for s in shares:
            n = round(BAR_W * s.share)
            fair = min(BAR_W - 1, round(BAR_W * s.fair))
            bar = ["█"] * n + [" "] * (BAR_W - n)
            bar[fair] = "│" if bar[fair] == " " else "┃"
            over = s.fair > 0 and s.share / s.fair > 1.5
            out.append(f"\n  {safe(s.server):<12} ")
            out.append("".join(bar), style=WARN if over else INFO)
            out.append(f" {100 * s.share:5.1f} % (fair {100 * s.fair:.1f} %)" + ("  ! over 1.5× fair" if over else ""))
    return out


class HealthPanel(Panel):
    """Findings by severity, then server shares per prefix (``│`` marks the fair share)."""

    report: HealthReport | None = None

    def show(self, report: HealthReport | None) -> None:
        if report is self.report:
            return
        self.report = report
        self.changed()

    def render(self) -> Text:
        return health_text(self.report)
