"""Exponential backoff with jitter for reconnecting to a device."""

from __future__ import annotations

import random
from dataclasses import dataclass, field


@dataclass
class Backoff:
    """Delay before the next attempt: ``min(max_s, base_s * factor**n)``, minus up to ``jitter`` of it.

    ``n`` is the number of consecutive failures so far; :meth:`reset` after a success.
    """

    base_s: float = 1.0
    max_s: float = 60.0
    factor: float = 2.0
    jitter: float = 0.5  # fraction of the delay removed at random (0 = none)
    rng: random.Random = field(default_factory=random.Random, repr=False)
    failures: int = 0
    history: list[tuple[float, float]] = field(default_factory=list, repr=False)  # last (raw, jittered) delays

    def next_delay(self) -> float:
        """Record one more failure and return how long to wait before retrying."""
        raw = min(self.max_s, self.base_s * self.factor ** self.failures)
        self.failures += 1
        delay = raw * (1.0 - self.jitter * self.rng.random())
        self.history = [*self.history[-31:], (raw, delay)]
        return delay

    def reset(self) -> None:
        self.failures = 0
