"""``--shard i/N``: which devices of an inventory collector i of N polls (rendezvous hashing).

Each device goes to the collector with the highest score ``sha256(f"{k}/{name}")`` over k in 0..N-1: the
same answer on every collector without talking to each other, and going from N to N+1 collectors moves only
the devices the new one wins (about 1/(N+1) of them); none moves between the old ones.
"""

from __future__ import annotations

import hashlib
import re

_SHARD = re.compile(r"(\d{1,4})/(\d{1,4})")


def parse_shard(text: str) -> tuple[int, int]:
    """``"i/N"`` -> (i, N) with 0 <= i < N <= 4096; ValueError with a one-line reason otherwise."""
    m = _SHARD.fullmatch(text.strip())
    if not m:
        raise ValueError(f"shard {text!r}: expected i/N, e.g. 0/4")
    i, n = int(m[1]), int(m[2])
    if not 1 <= n <= 4096 or not 0 <= i < n:
        raise ValueError(f"shard {text!r}: i must be 0..N-1 and N 1..4096")
    return i, n


def owner(name: str, n: int) -> int:
    """The collector (0..n-1) that polls ``name``."""
    best, best_k = b"", 0
    for k in range(n):
        score = hashlib.sha256(f"{k}/{name}".encode()).digest()
        if score > best:
            best, best_k = score, k
    return best_k


def mine(names, i: int, n: int) -> list[str]:  # noqa: ANN001 - iterable of str
    """The names of ``names`` that collector ``i`` of ``n`` polls, in their order."""
    return [x for x in names if owner(x, n) == i]
