"""What a poll keeps of its command outputs to tell whether the next poll's are the same.

The poller reuses the last poll's records when a device printed exactly the same outputs again (parsing
is pure, so that is exact).  Keeping every output as text for that comparison kept a second copy of a
device's whole answer alive between polls — 200 MB for a 200 MB route table (issue 16).  Outputs longer
than ``RAW_MAX`` are kept as their length and BLAKE2b-256 digest instead; shorter ones, and those the
poller reads back (``raw``), as they are.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Collection, Mapping

RAW_MAX = 1 << 20  # characters: outputs up to this are kept as text
_CHUNK = 1 << 20  # characters encoded at a time: no whole-output copy for the digest


@dataclass(frozen=True, slots=True)
class Digest:
    """A long output's length and BLAKE2b-256 digest: equal only when the text is equal."""

    size: int
    blake2b: bytes


def digest(text: str) -> Digest:
    h = hashlib.blake2b(digest_size=32)
    for i in range(0, len(text), _CHUNK):
        h.update(text[i:i + _CHUNK].encode("utf-8", "surrogatepass"))
    return Digest(len(text), h.digest())


def kept(outputs: Mapping[str, str], raw: Collection[str] = ()) -> dict[str, str | Digest]:
    """``outputs`` as the poller keeps them: text up to ``RAW_MAX`` (and the ids in ``raw``), else a digest."""
    return {k: v if len(v) <= RAW_MAX or k in raw else digest(v) for k, v in outputs.items()}
