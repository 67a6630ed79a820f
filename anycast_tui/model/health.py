"""Anycast health: typed findings over one fabric snapshot — the contract the ``check`` command, the Prometheus
metrics, the TUI's Health view and the recorder consume.  The checks themselves live beside it in ``model/``
(one module per check family: ``shares.py`` server shares and imbalance, ``polarization.py`` next-hop spreads
and the hash-settings table, ``rules.py`` the seed's rules); ``evaluate`` (``model/checks.py``) runs them all.

The records are defined in ``model/findings.py`` (below the check modules, which build them) and re-exported
here unchanged: import them from this module.
"""

from __future__ import annotations

from anycast_tui.model.checks import HealthTracker, Thresholds, evaluate, finding_events, open_findings
from anycast_tui.model.findings import (DeviceSpread, Finding, HashRow, HealthReport, ServerShare,
                                        Severity)
from anycast_tui.model.types import ConfiguredGroup

__all__ = ["ConfiguredGroup", "DeviceSpread", "Finding", "HashRow", "HealthReport", "HealthTracker", "ServerShare", "Severity",
           "Thresholds", "evaluate", "finding_events", "open_findings"]
