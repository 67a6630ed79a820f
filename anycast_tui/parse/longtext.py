"""Command output too long to hold in memory: kept in an anonymous file and read a block at a time.

A device that answers ``ip -j route show`` with 200 MB held 200 MB of bytes and then 200 MB of text
in the monitor, next to the records parsed from it (issue 16).  The collector writes an answer longer
than its spool threshold into a :class:`LongText` instead (an unnamed temporary file: ``O_TMPFILE``,
so nothing is left on disk even after ``kill -9``), with its size and BLAKE2b-256 digest taken as
the bytes arrive; the parsers read it through :func:`anycast_tui.parse._common.json_items` and
:func:`~anycast_tui.parse._common.lines_of`, a block at a time, and the poller compares its digest
with the last poll's before parsing anything.

``Text`` (``str | LongText``) is what a parser of command output accepts.  The bytes are decoded as
UTF-8 with replacement characters, the same as a short answer's (an incremental decoder: a character
split across two blocks is decoded whole).
"""

from __future__ import annotations

import codecs
import hashlib
import os
import tempfile
from typing import BinaryIO, Iterator, TypeAlias

BLOCK = 1 << 20  # bytes read (and characters handed to a parser) at a time


class LongText:
    """An answer in an anonymous temporary file; write it with :meth:`write`, then :meth:`finish` it.

    Once finished it is read-only: ``size`` (bytes), ``blake2b`` (32-byte digest of those bytes),
    :meth:`blocks` (its text, a block at a time, from the start each call).  :meth:`close` frees the
    file (the poller does so after each poll; the garbage collector would too).
    """

    __slots__ = ("_file", "_hash", "size", "blake2b")

    def __init__(self, directory: str | os.PathLike[str] | None = None) -> None:
        self._file: BinaryIO = tempfile.TemporaryFile(dir=directory)  # noqa: SIM115 -- closed by close()
        self._hash = hashlib.blake2b(digest_size=32)
        self.size = 0
        self.blake2b = b""

    @classmethod
    def of(cls, data: bytes | bytearray | str, directory: str | os.PathLike[str] | None = None) -> "LongText":
        """A finished LongText holding ``data`` (text is stored as UTF-8)."""
        t = cls(directory)
        t.write(data.encode("utf-8", "surrogatepass") if isinstance(data, str) else data)
        t.finish()
        return t

    def write(self, data: bytes | bytearray | memoryview) -> None:
        """Append ``data`` (OSError when the disk refuses it: the caller fails the command with it)."""
        self._hash.update(data)
        self._file.write(data)
        self.size += len(data)

    def finish(self) -> None:
        self.blake2b = self._hash.digest()
        self._file.flush()

    def blocks(self, size: int | None = None) -> Iterator[str]:
        """The text, ``size`` (default ``BLOCK``) bytes' worth at a time (never an empty block)."""
        size = size or BLOCK
        decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self._file.seek(0)
        while data := self._file.read(size):
            text = decoder.decode(data)
            if text:
                yield text
        tail = decoder.decode(b"", final=True)
        if tail:
            yield tail

    def text(self) -> str:
        """The whole text in memory: only for outputs a parser cannot read a block at a time."""
        return "".join(self.blocks())

    def close(self) -> None:
        self._file.close()

    def __repr__(self) -> str:
        return f"LongText({self.size:,} bytes)"


Text: TypeAlias = "str | LongText"


def as_str(text: Text) -> str:
    """``text`` as one string (a LongText read whole)."""
    return text if isinstance(text, str) else text.text()


def first_char(text: Text) -> str:
    """The first character that is not whitespace ('' when there is none), without copying the text."""
    chunks = (text[i:i + BLOCK] for i in range(0, len(text), BLOCK)) if isinstance(text, str) else text.blocks()
    for chunk in chunks:
        rest = chunk.lstrip()
        if rest:
            return rest[0]
    return ""


def is_blank(text: Text | None) -> bool:
    """No output, or only whitespace (``not text.strip()``, without copying the text)."""
    return text is None or first_char(text) == ""


def contains(text: Text, word: str) -> bool:
    """``word in text``, a block at a time for a LongText (a word split across two blocks is found)."""
    if isinstance(text, str):
        return word in text
    tail = ""
    for chunk in text.blocks():
        if word in tail + chunk[:len(word)] or word in chunk:
            return True
        tail = chunk[-(len(word) - 1):] if len(word) > 1 else ""
    return False
