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
from anycast_tui.model.flowarray import FlowArray
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
        src = pa.BufferReader(source) if isinstance(source, bytes) else source
        schema = pq.ParquetFile(src, memory_map=True).schema_arrow
        names = schema.names
        header = header_of(list(names), 0, None, kind=KIND, ignored=ANSWER_COLUMNS)
        wanted = [name for name, h in zip(names, header) if h in REQUIRED + OPTIONAL]
        text = [name for name in wanted if not pa.types.is_integer(schema.field(name).type)]
        # text columns come dictionary-encoded (as Parquet mostly stores them): parsed once per distinct value
        table = pq.ParquetFile(src, memory_map=True, read_dictionary=text).read(columns=wanted)
        table = table.unify_dictionaries()
    except (pa.ArrowException, OSError) as exc:
        raise ParseError(0, f"not a readable Parquet file ({str(exc).splitlines()[0] if str(exc) else exc})",
                         KIND) from None
    n = table.num_rows
    arrays = {h: table.column(name) for name, h in zip(wanted, (n.strip().lower() for n in wanted))}
    given = {h: _column(pa, h, a, n) for h, a in arrays.items()}
    got = columns(np.zeros(flowcols.PAD, np.uint8), {}, given)
    bad = np.flatnonzero(got.bad)
    slow = [_row(arrays, int(i)) for i in bad]
    return got.take(~got.bad).merge(n, np.flatnonzero(~got.bad), bad, slow)


_PARSERS = {"proto": flowcols.protos, "src": flowcols.addrs, "dst": flowcols.addrs, "sport": flowcols.ports,
            "dport": flowcols.ports, "ingress": flowcols.labels, "group": flowcols.labels}


def _column(pa: Any, name: str, col: Any, n: int) -> tuple[Any, ...]:
    """Column ``name`` parsed as its ``flowcols`` parser returns it: text once per dictionary entry and spread
    by the indices (null: bad, or None for a label), integers range-checked in bulk."""
    t = col.type
    if pa.types.is_integer(t) and name in _LIMITS:
        return _ints(pa.concat_arrays(col.chunks) if col.num_chunks else pa.array([], t), name)
    if not pa.types.is_dictionary(t) or not _is_text(pa, t.value_type):
        raise ParseError(0, f"column {name}: expected {'integers or ' if name in _LIMITS else ''}text, "
                         f"not {t.value_type if pa.types.is_dictionary(t) else t}", KIND)
    chunks = col.chunks
    dictionary = chunks[0].dictionary if chunks else pa.array([], pa.string())
    idx = np.concatenate([c.indices.fill_null(0).to_numpy(zero_copy_only=False).astype(np.int64) for c in chunks]) \
        if chunks else np.zeros(0, np.int64)
    null = np.concatenate([np.asarray(c.is_null().to_numpy(zero_copy_only=False), bool) for c in chunks]) \
        if chunks else np.zeros(0, bool)
    buf, spans = _spans(dictionary.cast(pa.large_string()))
    parsed = _PARSERS[name](buf, *spans)
    if name in OPTIONAL:
        values, codes, bad = parsed
        row_codes = np.where(null, len(values), codes[idx] if len(codes) else 0).astype(np.int32)
        return list(values) + [None], row_codes, (bad[idx] if len(bad) else null) & ~null
    *vals, bad = parsed
    out = tuple(v[idx] if len(v) else np.zeros((n,) + v.shape[1:], v.dtype) for v in vals)
    return (*out, (bad[idx] if len(bad) else null) | null)


def _is_text(pa: Any, t: Any) -> bool:
    return pa.types.is_string(t) or pa.types.is_large_string(t)


def _ints(arr: Any, name: str) -> tuple[np.ndarray, np.ndarray]:
    """(values, bad) of an integer column: null or out of range is bad."""
    vals = arr.fill_null(0).to_numpy(zero_copy_only=False).astype(np.int64)
    bad = np.asarray(arr.is_null().to_numpy(zero_copy_only=False), bool) | (vals < 0) | (vals > _LIMITS[name])
    dtype = np.uint8 if name == "proto" else np.uint16
    return np.where(bad, 0, vals).astype(dtype), bad


def _spans(arr: Any) -> tuple[np.ndarray, tuple[np.ndarray, np.ndarray]]:
    """A large_string array's bytes (padded) and its values' trimmed (start, end)."""
    _validity, offsets, data = arr.buffers()
    off = np.frombuffer(offsets, np.int64)[arr.offset: arr.offset + len(arr) + 1]
    raw = np.frombuffer(data, np.uint8) if data is not None else np.zeros(0, np.uint8)
    lo = int(off[0]) if len(off) else 0
    buf = flowcols.padded(raw[lo: int(off[-1]) if len(off) else 0])
    return buf, flowcols.trim(buf, off[:-1] - lo, off[1:] - lo)


def _row(arrays: dict[str, Any], i: int) -> Any:
    """Row ``i`` through the per-row reference code: its Flow, or the ParseError naming the row."""
    cells = {}
    for name, col in arrays.items():
        v = col[i].as_py()
        cells[name] = "" if v is None else str(v).strip()
    try:
        return row_flow(cells)
    except ValueError as exc:
        raise ParseError(i + 1, str(exc), KIND) from None
