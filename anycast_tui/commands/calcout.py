"""calc's answers written column-wise: JSON (the ``--json`` rows), the human table, CSV and Parquet, without a
Python object per flow.

A flow's answer (outcome, gateway, dev, route, nhid, placement, type, candidates, reason) depends only on its
*answer key* — the choice its device made, the placement, the doubt and, when unknown, the route decision —
of which a flow set has a handful: :class:`Answers` builds each distinct answer once, exactly as the per-flow
code did (:func:`answer`), and gives every flow its key's code.  The flows' own columns are written from
their arrays (``commands/columnar.py``).  The JSON is byte for byte what ``json.dumps`` of each row's dict
wrote (tests/unit/test_calc_flows_io.py).
"""

from __future__ import annotations

import csv
import io
from typing import Any, BinaryIO

import numpy as np

from anycast_tui.commands import jsonout
from anycast_tui.commands.columnar import Frag, addr_frag, chunks, frag, number_frag
from anycast_tui.model.flows import ANSWER_COLUMNS, OPTIONAL, REQUIRED, FlowMeta, proto_label
from anycast_tui.model.flowarray import FlowArray
from anycast_tui.model.hashing import Placement
from anycast_tui.model.placement import PLACEMENTS, Outcome, Placed
from anycast_tui.parse.flowcols import unique_codes

OUT_FORMATS = {".json": "json", ".csv": "csv", ".parquet": "parquet", ".pq": "parquet"}


def answer(placed: Placed, i: int) -> dict[str, Any]:
    """Flow ``i``'s answer, the keys in the order the JSON rows have them."""
    c = placed.choices[int(placed.choice[i])]
    placement = PLACEMENTS[int(placed.placement[i])]
    obj: dict[str, Any] = {"outcome": c.outcome.name.lower().replace("_", " "), "gateway": c.gateway, "dev": c.dev,
                           "route": c.route, "nhid": c.nhid, "placement": placement.value}
    if c.detail and c.outcome is not Outcome.FORWARD:
        obj["type"] = c.detail
    cands = placed.candidates(i)
    if placement is Placement.UNKNOWN and len(cands) > 1:
        obj.update(gateway=None, dev=None, nhid=None,
                   candidates=[{"gateway": x.gateway, "dev": x.dev, "nhid": x.nhid} for x in cands])
    reason = placed.reasons[int(placed.reason[i])]
    if reason:
        obj["reason"] = reason
    return obj


class Answers:
    """The distinct answers of a placed flow set (``rows``) and each flow's code into them (``codes``)."""

    def __init__(self, placed: Placed, flows: FlowArray, meta: FlowMeta):
        self.flows, self.meta, self.n = flows, meta, len(flows)
        unknown = placed.placement == PLACEMENTS.index(Placement.UNKNOWN)
        dec = placed.decision if placed.decision is not None else np.full(self.n, -1)
        parts = [placed.choice, placed.placement, placed.reason, np.where(unknown, dec, -1)]
        key = np.zeros(self.n, np.int64)
        for p in parts:
            p = np.asarray(p, np.int64) + 1
            key = key * (int(p.max(initial=0)) + 1) + p
        first, self.codes = unique_codes(key)
        self.rows = [answer(placed, int(i)) for i in first]
        self._addr: dict[str, Frag] = {}

    # ------------------------------------------------------------------ the flows' own columns

    def addr(self, name: str) -> Frag:
        """Column src or dst as one fragment (its distinct addresses formatted once, then cached)."""
        if name not in self._addr:
            self._addr[name] = addr_frag(self.flows.family, getattr(self.flows, name))
        return self._addr[name]

    def labelled(self) -> list[tuple[str, tuple[str | None, ...], np.ndarray]]:
        """Each optional column the flows have (see :meth:`optional`): (name, its distinct values, each flow's
        code into them)."""
        return [(c, f[0], f[1]) for c in OPTIONAL if (f := self.meta.factors(c)) is not None]

    def optional(self) -> list[str]:
        return [c for c in OPTIONAL if getattr(self.meta, c) is not None]

    # ------------------------------------------------------------------ writers

    def json_frags(self) -> list[Frag]:
        f = self.flows
        out = [frag([jsonout.dumps({"proto": proto_label(p)})[:-1] + ', "src": "' for p in range(256)], f.proto)]
        out.append(self.addr("src"))
        out.append(number_frag(f.sport, '", "sport": ', ', "dst": "'))
        out.append(self.addr("dst"))
        out.append(number_frag(f.dport, '", "dport": '))
        for c, values, codes in self.labelled():
            out.append(frag([", " + jsonout.dumps({c: v})[1:-1] for v in values], codes))
        out.append(frag([", " + jsonout.dumps(r)[1:] + ",\n" for r in self.rows], self.codes))
        return out

    def write_json(self, out: BinaryIO) -> None:
        """The rows as ``jsonout.lines`` writes them: ``[``, one object a line, ``]``."""
        if self.n == 0:
            out.write(b"[]\n")
            return
        out.write(b"[\n")
        frags = self.json_frags()
        pending = b""
        for chunk in chunks(frags, self.n):
            out.write(pending)
            out.write(chunk[:-2])
            pending = b",\n"
        out.write(b"\n]\n")

    def table_frags(self) -> tuple[str, list[Frag], list[str]]:
        """(header line, the rows' fragments, notes) of the human table."""
        f = self.flows
        head = ("proto", "src", "sport", "dst", "dport", "next hop", "placement")
        nh = [_next_hop(r) for r in self.rows]
        used = np.zeros(len(self.rows), bool)
        used[self.codes] = True
        protos = [proto_label(p) for p in range(256)]
        width = {h: len(h) for h in head}
        if self.n:
            width["proto"] = max(width["proto"], max(len(protos[p]) for p in np.unique(f.proto)))
            width["next hop"] = max(width["next hop"], max(len(x) for x, u in zip(nh, used) if u))
            for name in ("sport", "dport"):
                width[name] = max(width[name], len(str(int(getattr(f, name).max()))))
        frags: list[Frag] = [frag([x.ljust(width["proto"] + 2) for x in protos], f.proto)]
        for name in ("src", "sport", "dst", "dport"):
            if name in ("src", "dst"):
                addr = self.addr(name)
                ln = addr.length(self.n)
                width[name] = w = max(width[name], int(ln.max(initial=0)))
                frags += [addr, frag([" " * k for k in range(w + 3)], w + 2 - ln)]
            else:
                num = number_frag(getattr(f, name))
                frags += [num, frag([" " * k for k in range(width[name] + 3)], width[name] + 2 - num.length(self.n))]
        frags.append(frag([x.ljust(width["next hop"] + 2) + r["placement"] + "\n" for x, r in zip(nh, self.rows)],
                          self.codes))
        header = "  ".join(h.ljust(width[h]) for h in head).rstrip()
        notes = sorted({r["reason"] for r, u in zip(self.rows, used) if u and r.get("reason")})
        return header, frags, [f"note: {x}" for x in notes]

    def write_table(self, out: BinaryIO) -> None:
        header, frags, notes = self.table_frags()
        out.write(header.encode() + b"\n")
        for chunk in chunks(frags, self.n):
            out.write(chunk)
        for line in notes:
            out.write(line.encode() + b"\n")

    def csv_columns(self) -> list[str]:
        return list(REQUIRED) + self.optional() + list(ANSWER_COLUMNS)

    def write_csv(self, out: BinaryIO) -> None:
        """Header ``proto,src,sport,dst,dport[,ingress,group],outcome,…,candidates``; empty cells for null;
        ``candidates`` is the JSON list of {gateway, dev, nhid} where the placement is unknown."""
        f = self.flows
        out.write(",".join(self.csv_columns()).encode() + b"\n")
        frags = [frag([_csv_cell(proto_label(p)) + "," for p in range(256)], f.proto)]
        frags += [self.addr("src"), number_frag(f.sport, ",", ","), self.addr("dst"),
                  number_frag(f.dport, ",")]
        for c, values, codes in self.labelled():
            frags.append(frag(["," + _csv_cell(v) for v in values], codes))
        frags.append(frag(["," + ",".join(_csv_cell(_cell(r, c)) for c in ANSWER_COLUMNS) + "\n" for r in self.rows],
                          self.codes))
        for chunk in chunks(frags, self.n):
            out.write(chunk)

    def arrow_table(self) -> Any:
        """A pyarrow Table of the same columns (strings dictionary-encoded where a flow set repeats them)."""
        import pyarrow as pa

        f = self.flows
        cols: dict[str, Any] = {"proto": _dictionary(pa, [proto_label(p) for p in range(256)], f.proto)}
        for name in ("src", "dst"):
            a = self.addr(name)
            offsets = np.zeros(len(a.lengths) + 1, np.int64)
            np.cumsum(a.lengths, out=offsets[1:])
            data = a.table[a.table != 0]  # the entries, in order, without their padding
            values = pa.LargeStringArray.from_buffers(len(a.lengths), pa.py_buffer(offsets), pa.py_buffer(data))
            cols[name] = pa.DictionaryArray.from_arrays(pa.array(a.codes.astype(np.int32)), values.cast(pa.string()))
            if name == "src":
                cols["sport"] = pa.array(f.sport)
        cols["dport"] = pa.array(f.dport)
        for c, values, codes in self.labelled():
            cols[c] = _dictionary(pa, list(values), codes)
        for c in ANSWER_COLUMNS:
            values = [r.get(c) for r in self.rows]
            if c == "nhid":
                table = pa.array(values, pa.int64())
            elif c == "candidates":
                table = pa.array(values, pa.list_(pa.struct([("gateway", pa.string()), ("dev", pa.string()),
                                                              ("nhid", pa.int64())])))
            else:
                cols[c] = _dictionary(pa, values, self.codes)
                continue
            cols[c] = table.take(pa.array(self.codes))
        return pa.table(cols)

    def write_parquet(self, path: str) -> None:
        import pyarrow.parquet as pq

        pq.write_table(self.arrow_table(), path)


def _dictionary(pa: Any, values: list[Any], codes: np.ndarray) -> Any:
    """A dictionary-encoded string column: ``values[codes]``, None → null."""
    present = [v for v in values if v is not None]
    index = {v: k for k, v in enumerate(dict.fromkeys(present))}
    remap = np.array([index.get(v, -1) if v is not None else -1 for v in values] or [-1], np.int32)
    idx = remap[codes] if len(codes) else np.zeros(0, np.int32)
    return pa.DictionaryArray.from_arrays(pa.array(idx, pa.int32(), mask=idx < 0), pa.array(list(index), pa.string()))


def _cell(row: dict[str, Any], column: str) -> str | None:
    v = row.get(column)
    if column == "candidates" and v is not None:
        return jsonout.dumps(v)
    return None if v is None else str(v)


def _csv_cell(value: str | None) -> str:
    if value is None:
        return ""
    buf = io.StringIO()
    csv.writer(buf, lineterminator="").writerow([value])
    return buf.getvalue()


def _next_hop(r: dict[str, Any]) -> str:
    """The table's "next hop" cell of an answer."""
    if r.get("candidates"):
        return f"one of {len(r['candidates'])} next hops"
    if r["outcome"] == "forward":
        return " ".join(x for x in (f"via {r['gateway']}" if r["gateway"] else "",
                                    f"dev {r['dev']}" if r["dev"] else "") if x)
    return r.get("type") or r["outcome"]


def out_format(path: str) -> str | None:
    """``--out`` file's format by its extension, None when unknown."""
    for ext, fmt in OUT_FORMATS.items():
        if path.lower().endswith(ext):
            return fmt
    return None

