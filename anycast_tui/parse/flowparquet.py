"""Flows from a Parquet file (pyarrow), the columns of the flows CSV: ``proto,src,sport,dst,dport`` and
optionally ``ingress,group`` (names as in a CSV header: any order and case).  ``proto`` is text (``tcp`` …)
or an integer, the ports integers or text, the addresses and labels text (plain or dictionary-encoded).  The
columns ``calc --out F.parquet`` adds after them (``ANSWER_COLUMNS``) are ignored, so its output reads back.

Text columns go through the same vectorised parsers as the CSV's cells (``parse/flowcols.py``), integer
columns are range-checked in bulk; a bad row is reported by the CSV's per-row reference code, as a
``ParseError`` whose ``line`` is the 1-based row (``flows-parquet: line 7: sport must be …``).  pyarrow is
imported only when a Parquet file is read.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np

from anycast_tui.model.flows import ANSWER_COLUMNS, OPTIONAL, REQUIRED, FlowMeta
from anycast_tui.model.hashing import FlowArray
from anycast_tui.parse import flowcols
from anycast_tui.parse.errors import ParseError
from anycast_tui.parse.flowcsv import columns, header_of, row_flow

KIND = "flows-parquet"
MAGIC = b"PAR1"
_LIMITS = {"proto": 255, "sport": 65535, "dport": 65535}


def is_parquet(head: bytes) -> bool:
    """A file's first bytes are Parquet's magic."""
    return head[:4] == MAGIC


def read_flows_parquet(source: str | os.PathLike[str] | bytes) -> tuple[FlowArray, FlowMeta]:
    """Read a flows Parquet file from a path or its bytes."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        pf = pq.ParquetFile(pa.BufferReader(source) if isinstance(source, bytes) else source, memory_map=True)
        names = pf.schema_arrow.names
        header = header_of(list(names), 0, None, kind=KIND, ignored=ANSWER_COLUMNS)
        wanted = [name for name, h in zip(names, header) if h in REQUIRED + OPTIONAL]
        table = pf.read(columns=wanted)
    except (pa.ArrowException, OSError) as exc:
        raise ParseError(0, f"not a readable Parquet file ({str(exc).splitlines()[0] if str(exc) else exc})",
                         KIND) from None
    arrays = {h: _plain(pa, table.column(name).combine_chunks(), h)
              for name, h in zip(wanted, (n.strip().lower() for n in wanted))}
    n = table.num_rows
    texts = {h: a for h, a in arrays.items() if not pa.types.is_integer(a.type)}
    given = {h: _ints(a, h) for h, a in arrays.items() if pa.types.is_integer(a.type)}
    buf, spans = _spans(texts, n)
    got = columns(buf, spans, given)
    bad = np.flatnonzero(got.bad)
    fast = np.flatnonzero(~got.bad)
    slow = [_row(arrays, int(i)) for i in bad]
    return got.take(~got.bad).merge(n, fast, bad, slow, list(arrays))


def _plain(pa: Any, arr: Any, name: str) -> Any:
    """A column as plain text (large_string) or integers; ParseError on any other type."""
    t = arr.type
    if pa.types.is_dictionary(t):
        arr = arr.dictionary_decode()
        t = arr.type
    if pa.types.is_integer(t) and name in _LIMITS:
        return arr
    if pa.types.is_string(t) or pa.types.is_large_string(t) or str(t) == "string_view":
        return arr.cast(pa.large_string())
    raise ParseError(0, f"column {name}: expected {'integers or ' if name in _LIMITS else ''}text, not {t}", KIND)


def _ints(arr: Any, name: str) -> tuple[np.ndarray, np.ndarray]:
    """(values, bad) of an integer column: null or out of range is bad."""
    vals = arr.fill_null(0).to_numpy(zero_copy_only=False).astype(np.int64)
    bad = np.asarray(arr.is_null().to_numpy(zero_copy_only=False), bool) | (vals < 0) | (vals > _LIMITS[name])
    dtype = np.uint8 if name == "proto" else np.uint16
    return np.where(bad, 0, vals).astype(dtype), bad


def _spans(texts: dict[str, Any], n: int) -> tuple[np.ndarray, dict[str, tuple[np.ndarray, np.ndarray]]]:
    """One buffer holding every text column's bytes, and each column's trimmed (start, end) per row."""
    parts, spans, base = [], {}, 0
    for name, arr in texts.items():
        _validity, offsets, data = arr.buffers()
        off = np.frombuffer(offsets, np.int64)[arr.offset: arr.offset + n + 1]
        raw = np.frombuffer(data, np.uint8) if data is not None else np.zeros(0, np.uint8)
        lo, hi = (int(off[0]), int(off[-1])) if n else (0, 0)
        parts.append(raw[lo:hi])
        start = off[:-1] - lo + base
        spans[name] = (start, off[1:] - lo + base)
        base += hi - lo
    buf = flowcols.padded(np.concatenate(parts) if parts else np.zeros(0, np.uint8))
    return buf, {name: flowcols.trim(buf, s, e) for name, (s, e) in spans.items()}


def _row(arrays: dict[str, Any], i: int) -> Any:
    """Row ``i`` through the per-row reference code: its Flow, or the ParseError naming the row."""
    cells = {}
    for name, arr in arrays.items():
        v = arr[i].as_py()
        cells[name] = "" if v is None else str(v).strip()
    try:
        return row_flow(cells)
    except ValueError as exc:
        raise ParseError(i + 1, str(exc), KIND) from None
