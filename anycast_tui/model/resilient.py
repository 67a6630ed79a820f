"""Simulation of a Linux resilient nexthop group's bucket table (net/ipv4/nexthop.c).

Kernel rules reproduced here:

* Wants: member i wants round(B*cum_i/W) - round(B*cum_{i-1}/W) buckets
  (``nh_res_group_rebalance``, DIV_ROUND_CLOSEST).  Under-weight members are
  pushed on the *front* of a list in member order, so the list runs in reverse
  member order; buckets go to the list head until it is balanced.
* Upkeep (``nh_res_table_upkeep``) walks buckets 0..B-1.  A bucket migrates if
  it is unoccupied (its member left: forced), or its member is over-weight and
  the bucket is idle (unused for ``idle_timer`` — a bucket never used since it
  was last migrated is idle at once), or the unbalanced timer (if non-zero)
  expired since the table became unbalanced.
* Upkeep runs on every group change (create, replace, member removal) and
  then, while unbalanced, at the earliest idle/unbalanced deadline but no
  sooner than 0.5 s after the previous run.
* Every lookup (forwarded packet, and also ``ip route get``) marks its bucket
  busy: ``touch``.

Time is in seconds on any monotonic clock the caller chooses (``now``); the
kernel counts jiffies, so only decisions far from a timer edge are exact.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterable, Sequence

import numpy as np
from numpy.typing import ArrayLike

from anycast_tui.model.mapping import PlacementError, WeightError, check_weights
from anycast_tui.model.types import NexthopGroup

__all__ = ["ResilientGroup", "UPKEEP_MIN_INTERVAL"]

UPKEEP_MIN_INTERVAL = 0.5  # NH_RES_UPKEEP_DW_MINIMUM_INTERVAL (HZ / 2)
MAX_BUCKETS = 65535  # NHA_RES_GROUP_BUCKETS is a u16
UNOCCUPIED = -1


@dataclass
class ResilientGroup:
    """A resilient group's members and bucket table, advanced like the kernel does."""

    members: list[int]
    weights: list[int]
    num_buckets: int
    idle_timer: float = 120.0
    unbalanced_timer: float = 0.0
    nhids: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    used_time: np.ndarray = field(default_factory=lambda: np.zeros(0))
    migrated_time: np.ndarray = field(default_factory=lambda: np.zeros(0))
    unbalanced_since: float | None = None
    next_upkeep: float | None = None  # when the kernel's delayed work will run, None if balanced
    _wants: dict[int, int] = field(default_factory=dict)
    _uw: list[int] = field(default_factory=list)  # under-weight list, head first

    # ------------------------------------------------------------------ construction

    @classmethod
    def create(cls, members: Sequence[int], weights: Sequence[int] | None = None, *,
               num_buckets: int = 128, idle_timer: float = 120.0, unbalanced_timer: float = 0.0,
               now: float = 0.0) -> "ResilientGroup":
        """``ip nexthop add id G group ... type resilient``: the initial fill."""
        w = [1] * len(members) if weights is None else list(weights)
        w = _check(members, w, num_buckets)
        g = cls(list(members), w, num_buckets, float(idle_timer), float(unbalanced_timer),
                np.full(num_buckets, UNOCCUPIED, np.int64), np.full(num_buckets, now),
                np.full(num_buckets, now))
        g._rebalance(now, prev_has_uw=False, prev_since=None)
        g._upkeep(now)
        return g

    @classmethod
    def from_group(cls, group: NexthopGroup, *, now: float = 0.0) -> "ResilientGroup":
        """From a collected group with its bucket table (``ip -j nexthop bucket show``).

        A bucket's idle time gives its last use; whether it was used since its
        last migration is unknown and assumed yes.  ``unbalanced_time`` (seconds
        the group has been unbalanced) restores the unbalanced timer's start.
        """
        if group.type != "resilient":
            raise ValueError(f"group {group.id} is {group.type}, not resilient")
        b = group.buckets or len(group.bucket_table)
        if len(group.bucket_table) != b:
            raise ValueError(f"group {group.id}: {len(group.bucket_table)} buckets listed, {b} expected")
        weights = _check([m.id for m in group.members], [m.weight for m in group.members], b)
        if sorted(bk.index for bk in group.bucket_table) != list(range(b)):
            raise PlacementError(f"group {group.id}: bucket indexes are not 0..{b - 1}, each once")
        nhids = np.full(b, UNOCCUPIED, np.int64)
        used = np.full(b, now, float)
        for bk in group.bucket_table:
            nhids[bk.index] = bk.nhid
            used[bk.index] = now - bk.idle_time
        g = cls([m.id for m in group.members], weights, b,
                float(group.idle_timer if group.idle_timer is not None else 120),
                float(group.unbalanced_timer or 0), nhids, used, np.full(b, -np.inf))
        known = set(g.members)
        g.nhids[~np.isin(g.nhids, list(known))] = UNOCCUPIED
        since = None if group.unbalanced_time is None else now - group.unbalanced_time
        g._rebalance(now, prev_has_uw=since is not None, prev_since=since)
        if g._uw:
            g.next_upkeep = now  # the kernel has work pending; let advance() run it
        return g

    def copy(self) -> "ResilientGroup":
        return ResilientGroup(list(self.members), list(self.weights), self.num_buckets, self.idle_timer,
                              self.unbalanced_timer, self.nhids.copy(), self.used_time.copy(),
                              self.migrated_time.copy(), self.unbalanced_since, self.next_upkeep,
                              dict(self._wants), list(self._uw))

    # ------------------------------------------------------------------ views

    @property
    def table(self) -> np.ndarray:
        """nhid per bucket (read-only copy)."""
        return self.nhids.copy()

    def wants(self) -> dict[int, int]:
        return dict(self._wants)

    def counts(self) -> dict[int, int]:
        return {m: int((self.nhids == m).sum()) for m in self.members}

    @property
    def balanced(self) -> bool:
        return not self._uw

    def idle_time(self, now: float) -> np.ndarray:
        return now - self.used_time

    # ------------------------------------------------------------------ events

    def replace(self, members: Sequence[int], weights: Sequence[int] | None = None, *, now: float,
                idle_timer: float | None = None, unbalanced_timer: float | None = None) -> None:
        """``ip nexthop replace id G group ...`` (also what member removal does internally)."""
        self.advance(now)
        w = [1] * len(members) if weights is None else list(weights)
        w = _check(members, w, self.num_buckets)
        if idle_timer is not None:
            self.idle_timer = float(idle_timer)
        if unbalanced_timer is not None:
            self.unbalanced_timer = float(unbalanced_timer)
        prev_has_uw = bool(self._uw)
        prev_since = self.unbalanced_since
        self.members, self.weights = list(members), w
        # nh_res_table_migrate_buckets: buckets of members that left become unoccupied
        gone = ~np.isin(self.nhids, np.asarray(self.members, np.int64))
        self.nhids[gone] = UNOCCUPIED
        self._rebalance(now, prev_has_uw=prev_has_uw, prev_since=prev_since)
        self._upkeep(now)

    def remove(self, member: int, *, now: float) -> None:
        """A member leaves (``ip nexthop del id M``, or its device goes down)."""
        if member not in self.members:
            raise KeyError(member)
        if len(self.members) == 1:
            raise ValueError("removing the last member deletes the group")
        i = self.members.index(member)
        self.replace(self.members[:i] + self.members[i + 1:], self.weights[:i] + self.weights[i + 1:],
                     now=now)

    def add(self, member: int, weight: int = 1, *, now: float, position: int | None = None) -> None:
        """A member joins, appended (or inserted at ``position``) in member order."""
        if member in self.members:
            raise ValueError(f"{member} is already a member")
        pos = len(self.members) if position is None else position
        self.replace(self.members[:pos] + [member] + self.members[pos:],
                     self.weights[:pos] + [weight] + self.weights[pos:], now=now)

    def set_weight(self, member: int, weight: int, *, now: float) -> None:
        w = list(self.weights)
        w[self.members.index(member)] = weight
        self.replace(self.members, w, now=now)

    def touch(self, buckets: Iterable[int] | np.ndarray, now: float) -> None:
        """Mark buckets busy (a packet or an ``ip route get`` used them at ``now``)."""
        self.advance(now)
        idx = np.asarray(list(buckets) if not isinstance(buckets, np.ndarray) else buckets, np.int64)
        self.used_time[idx] = now

    def lookup(self, hashes: ArrayLike, now: float | None = None) -> np.ndarray:
        """nhid per hash; with ``now``, also marks the buckets busy as the kernel does."""
        h = np.asarray(hashes).astype(np.int64)
        b = h % self.num_buckets
        if now is not None:
            self.touch(np.unique(b), now)
        return self.nhids[b]

    def advance(self, now: float) -> None:
        """Run every upkeep the kernel would have run up to ``now``."""
        while self.next_upkeep is not None and self.next_upkeep <= now:
            self._upkeep(self.next_upkeep)

    # ------------------------------------------------------------------ kernel internals

    def _rebalance(self, now: float, *, prev_has_uw: bool, prev_since: float | None) -> None:
        total = sum(self.weights)
        prev = 0
        cum = 0
        self._wants = {}
        self._uw = []
        self.unbalanced_since = None
        counts = self.counts()
        for m, w in zip(self.members, self.weights):
            cum += w
            upper = (self.num_buckets * cum + total // 2) // total  # DIV_ROUND_CLOSEST
            self._wants[m] = upper - prev
            prev = upper
            if counts[m] < self._wants[m]:
                if not self._uw:
                    self.unbalanced_since = now
                self._uw.insert(0, m)  # list_add: push at head
        if prev_has_uw and self._uw and prev_since is not None:
            self.unbalanced_since = prev_since

    def _idle_point(self, i: int, now: float) -> float:
        if self.used_time[i] == self.migrated_time[i]:
            return now  # not used since migrated: idle now
        return float(self.used_time[i] + self.idle_timer)

    def _upkeep(self, now: float) -> None:
        counts = self.counts()
        if self.unbalanced_timer:
            deadline = now + self.unbalanced_timer
        else:
            deadline = now + self.idle_timer
        for i in range(self.num_buckets):
            nh = int(self.nhids[i])
            migrate = False
            if nh == UNOCCUPIED:
                migrate = True
            elif counts[nh] > self._wants[nh]:
                idle_point = self._idle_point(i, now)
                if now >= idle_point:
                    migrate = True
                else:
                    if self.unbalanced_timer:
                        unb = (self.unbalanced_since if self.unbalanced_since is not None else now) \
                            + self.unbalanced_timer
                        if now > unb:
                            migrate = True
                        else:
                            deadline = min(deadline, unb)
                    if not migrate:
                        deadline = min(deadline, idle_point)
            if not migrate or not self._uw:
                continue
            new = self._uw[0]
            if nh != UNOCCUPIED:
                counts[nh] -= 1
            counts[new] += 1
            self.nhids[i] = new
            self.used_time[i] = now
            self.migrated_time[i] = now
            if counts[new] == self._wants[new]:
                self._uw.pop(0)
        if self._uw:
            self.next_upkeep = max(deadline, now + UPKEEP_MIN_INTERVAL)
        else:
            self.next_upkeep = None


def _check(members: Sequence[int], weights: Sequence[int], num_buckets: int) -> list[int]:
    """The weights as ints, once members, weights (WeightError: 1..MAX_WEIGHT) and buckets (1..MAX_BUCKETS) hold."""
    if not members:
        raise ValueError("a group needs at least one member")
    if len(set(members)) != len(members):
        raise ValueError("a member can appear only once in a group")
    if len(weights) != len(members):
        raise ValueError("one weight per member")
    out = check_weights(weights)
    if isinstance(num_buckets, bool) or not isinstance(num_buckets, (int, np.integer)) \
            or not 1 <= num_buckets <= MAX_BUCKETS:
        raise WeightError(f"a resilient group has 1..{MAX_BUCKETS} buckets, not {str(num_buckets)[:24]}")
    return out
