"""Anycast health: the typed findings over one fabric snapshot (the records of the contract ``model/health.py``
re-exports: the ``check`` command, the Prometheus metrics, the TUI's Health view and the recorder consume them).
Here, below the check modules (``shares.py``, ``polarization.py``, ``rules.py``), so that they build these records
and ``health.py`` can re-export both the records and ``evaluate`` without a circle.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass


class Severity(enum.IntEnum):
    INFO = 0
    WARNING = 1
    ERROR = 2

    @property
    def label(self) -> str:
        return self.name.lower()


@dataclass(frozen=True, slots=True)
class Finding:
    """One broken rule, about one subject."""

    rule: str  # stable id, e.g. "seed-zero", "same-seed-consecutive-tiers", "polarized", "imbalance", ...
    severity: Severity
    subject: str  # what it is about: a device, "device prefix", a server, a prefix
    summary: str  # one line, for humans
    fix: str  # one line: what to change
    evidence: tuple[str, ...] = ()  # lines shown when the finding is selected

    @property
    def key(self) -> tuple[str, str]:
        """Identity over time: a finding with the same key in the next evaluation is the same finding."""
        return (self.rule, self.subject)


@dataclass(frozen=True, slots=True)
class ServerShare:
    """One server's share of one anycast prefix's flows, end to end."""

    prefix: str
    server: str
    share: float  # 0..1 of the flows (hash space, or sampled traffic when ``basis`` says so)
    fair: float  # 0..1: equal share, or by configured weight
    basis: str  # what the share was computed on: "hash space (10,000 synthetic flows)", "sampled traffic (…)"
    hash_share: float | None = None  # measured on sampled traffic: the server's share of hash space beside it
    pps: float | None = None  # measured on sampled traffic: the server's estimated packets per second
    flows: int | None = None  # measured on sampled traffic: the sampled flows the server answers

    @property
    def sampled(self) -> bool:
        """Is ``share`` measured on sampled traffic (else: hash space)?"""
        return self.hash_share is not None


@dataclass(frozen=True, slots=True)
class DeviceSpread:
    """How one device spreads the flows that actually reach it over its next hops, for one prefix."""

    device: str
    prefix: str
    shares: tuple[tuple[str, float], ...]  # (next hop, share 0..1 of the flows reaching this device)
    uniform: tuple[tuple[str, float], ...]  # the same under uniform input (what the group alone would give)
    flows: int  # flows that reached the device

    @property
    def ratio(self) -> float:
        """Polarization ratio: the largest next hop's share over its uniform-input share (1.0: none)."""
        uni = dict(self.uniform)
        worst = 1.0
        for hop, s in self.shares:
            u = uni.get(hop, 0.0)
            if u > 0:
                worst = max(worst, s / u, (u / s) if s > 0 else float("inf"))
        return worst


@dataclass(frozen=True, slots=True)
class HashRow:
    """One device's multipath hash settings, for the fabric's hash-settings table (tier by tier)."""

    device: str
    tier: str  # the device's role: client, border, spine, leaf, server, other
    policy: int
    fields: int  # fib_multipath_hash_fields (meaningful under policy 3)
    seed: int  # 0: a random key per boot
    multipath: bool  # hashes flows to an anycast prefix over several next hops
    same_as: tuple[str, ...] = ()  # neighbours on the anycast path (either direction) hashing with the same function


@dataclass(frozen=True, slots=True)
class HealthReport:
    taken_at_ms: int
    shares: tuple[ServerShare, ...] = ()
    spreads: tuple[DeviceSpread, ...] = ()
    findings: tuple[Finding, ...] = ()
    hash_table: tuple[HashRow, ...] = ()  # every answering device, tier by tier (client/border, spine, leaf, …)
    notes: tuple[str, ...] = ()  # how the figures were computed ("ingress assumed: …", the sample)

    def worst(self) -> "Severity | None":
        """The highest severity among the findings; None without any."""
        return max((f.severity for f in self.findings), default=None)

    def imbalance(self, prefix: str) -> float | None:
        """max(share / fair) over the prefix's servers; None when no server answers it."""
        ratios = [s.share / s.fair for s in self.shares if s.prefix == prefix and s.fair > 0]
        return max(ratios) if ratios else None
