"""What a poll keeps of its command outputs to tell whether the next poll's are the same.

The poller reuses the last poll's records when a device printed exactly the same outputs again (parsing
is pure, so that is exact).  Keeping every output as text for that comparison kept a second copy of a
device's whole answer alive between polls — 200 MB for a 200 MB route table (issue 16).  Outputs longer
than ``RAW_MAX`` are kept as their size and BLAKE2b-256 digest instead; shorter ones, and those the
poller reads back (``raw``), as they are.  An output the collector spooled to a file (``LongText``,
over 16 MiB) brings its digest, taken as it arrived: comparing it reads nothing.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Collection, Mapping

from anycast_tui.parse.longtext import LongText, Text

RAW_MAX = 1 << 20  # characters: outputs up to this are kept as text
_CHUNK = 1 << 20  # characters encoded at a time: no whole-output copy for the digest


@dataclass(frozen=True, slots=True)
class Digest:
    """A long output's size in UTF-8 bytes and BLAKE2b-256 digest: equal only when the text is equal."""

    size: int
    blake2b: bytes


def digest(text: Text) -> Digest:
    """The digest of ``text``'s UTF-8 bytes; a LongText's was taken as its bytes arrived."""
    if isinstance(text, LongText):
        return Digest(text.size, text.blake2b)
    h = hashlib.blake2b(digest_size=32)
    size = 0
    for i in range(0, len(text), _CHUNK):
        data = text[i:i + _CHUNK].encode("utf-8", "surrogatepass")
        h.update(data)
        size += len(data)
    return Digest(size, h.digest())


def kept(outputs: Mapping[str, Text], raw: Collection[str] = ()) -> dict[str, str | Digest]:
    """``outputs`` as the poller keeps them: text up to ``RAW_MAX`` (and the ids in ``raw``), else a digest.
    A LongText is always kept as its digest (its file is closed after the poll)."""
    return {k: v if isinstance(v, str) and (len(v) <= RAW_MAX or k in raw) else digest(v)
            for k, v in outputs.items()}
