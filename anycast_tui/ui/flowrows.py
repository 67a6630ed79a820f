"""The Flows view's rows: filter, sort and per-row text over numpy columns (no textual).

Rows are flow indexes; only the rows on screen are formatted.  Marks come
from the selected event's or incident's :class:`~anycast_tui.model.impact.EventImpact`:
``✗`` TCP reset, ``↷`` UDP continued elsewhere, ``→`` other moved flows,
``⑂`` the flow's client had its flows split across servers.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

import numpy as np

from anycast_tui.model.flows import proto_label
from anycast_tui.model.flowarray import FlowArray
from anycast_tui.model.impact import EventImpact
from anycast_tui.model.paths import PathResult

SORTS = ("flow", "moved first", "server", "client")
SOURCE_WORDS = {"synthetic": 0, "sampled": 1}  # filter words; FlowRows.sources codes (session.SYNTHETIC/SAMPLED)
SOURCE_TEXT = ("syn", "smp")
MARK_WORDS = {"moved": "moved", "reset": "tcp_reset", "udp-moved": "udp", "split": "split"}


@dataclass(frozen=True, slots=True)
class Marks:
    """Per flow: 0 none, 1 TCP reset, 2 UDP continued, 3 other moved; and split flags."""

    kind: np.ndarray  # uint8
    split: np.ndarray  # bool
    moved: np.ndarray  # ascending flow indexes
    from_end: np.ndarray  # per moved flow → labels
    to_end: np.ndarray
    labels: tuple[str, ...]

    @classmethod
    def none(cls, n: int) -> "Marks":
        e = np.zeros(0, np.int32)
        return cls(np.zeros(n, np.uint8), np.zeros(n, bool), e, e, e, ())

    def from_to(self, i: int) -> tuple[str, str] | None:
        """(end before, end after) of flow ``i`` if the event moved it."""
        k = int(np.searchsorted(self.moved, i))
        if k < len(self.moved) and self.moved[k] == i:
            return self.labels[int(self.from_end[k])], self.labels[int(self.to_end[k])]
        return None

    @classmethod
    def of(cls, n: int, detail: EventImpact) -> "Marks":
        kind = np.zeros(n, np.uint8)
        kind[detail.moved] = 3
        kind[detail.udp] = 2
        kind[detail.tcp_reset] = 1
        split = np.zeros(n, bool)
        split[detail.split] = True
        return cls(kind, split, detail.moved, detail.from_end, detail.to_end, detail.labels)


GLYPH = {0: " ", 1: "✗", 2: "↷", 3: "→"}


def _addr(raw: np.ndarray, family: int) -> str:
    return str(ipaddress.ip_address(bytes(raw[:4]) if family == 4 else bytes(raw)))


class FlowRows:
    """Flows with their ingress and current path; ``rows`` is the filtered, sorted order."""

    def __init__(self, flows: FlowArray, ingress: np.ndarray, paths: PathResult | None,
                 sources: np.ndarray | None = None) -> None:
        self.flows = flows
        self.ingress = ingress
        # per flow: 0 synthetic sample, 1 sampled from the fabric's own traffic; None: all synthetic
        self.sources = sources if sources is not None and bool(np.any(sources)) else None
        self.paths = paths
        self.marks = Marks.none(len(flows))
        self.query = ""
        self.sort = SORTS[0]
        self._keys: list[str] | None = None
        self._fields: list[tuple[list[str], np.ndarray]] | None = None
        self.rows = np.arange(len(flows), dtype=np.int64)
        self.version = 0  # bumped whenever rows, marks or paths change

    def __len__(self) -> int:
        return len(self.rows)

    @property
    def total(self) -> int:
        return len(self.flows)

    @property
    def has_sampled(self) -> bool:
        return self.sources is not None

    def source(self, i: int) -> str:
        return SOURCE_TEXT[int(self.sources[i])] if self.sources is not None else SOURCE_TEXT[0]

    def set_paths(self, paths: PathResult | None) -> None:
        self.paths = paths
        self.refilter()

    def set_marks(self, marks: Marks) -> None:
        self.marks = marks
        self.refilter()

    def set_query(self, query: str) -> None:
        self.query = query.strip()
        self.refilter()

    def set_sort(self, sort: str) -> None:
        self.sort = sort
        self.refilter()

    # ------------------------------------------------------------------ text

    def server(self, i: int) -> str:
        if self.paths is None:
            return "?"
        return self.paths.terminals[int(self.paths.final[i])]

    def path(self, i: int) -> str:
        return " › ".join(self.paths.path(i)) if self.paths is not None else "?"

    def key(self, i: int) -> str:
        """``tcp 203.0.113.7:40001 → 192.0.2.53:443 spine01``: what the filter matches (with the server)."""
        f = self.flows
        fam = int(f.family[i])
        return (f"{proto_label(int(f.proto[i]))} {_addr(f.src[i], fam)}:{int(f.sport[i])} → "
                f"{_addr(f.dst[i], fam)}:{int(f.dport[i])} {self.ingress[i]}")

    def prepare(self) -> None:
        """Build the filter's text keys and field values now (call from a worker thread: the first filter is
        then instant)."""
        self._vocab()
        self._all_keys()

    def _all_keys(self) -> list[str]:
        """Every row's :meth:`key`, built column-wise (IPv4 through lookup tables; ~20x faster than per row)."""
        if self._keys is None:
            f = self.flows
            octet = np.asarray([str(i) for i in range(256)], dtype=object)
            port = np.asarray([str(i) for i in range(65536)], dtype=object)
            protos = np.asarray([proto_label(i) for i in range(256)], dtype=object)

            def v4(a: np.ndarray) -> np.ndarray:
                return octet[a[:, 0]] + "." + octet[a[:, 1]] + "." + octet[a[:, 2]] + "." + octet[a[:, 3]]

            keys = (protos[f.proto] + " " + v4(f.src) + ":" + port[f.sport] + " → " + v4(f.dst) + ":"
                    + port[f.dport] + " " + self.ingress.astype(object))
            out = keys.tolist()
            for i in np.flatnonzero(np.asarray(f.family) != 4):
                out[int(i)] = self.key(int(i))
            self._keys = out
        return self._keys

    # ------------------------------------------------------------------ filter and sort

    def counts(self) -> dict[str, int]:
        k = self.marks.kind
        return {"shown": len(self.rows), "total": self.total, "moved": int((k > 0).sum()),
                "sampled": int(np.count_nonzero(self.sources)) if self.sources is not None else 0,
                "tcp_reset": int((k == 1).sum()), "udp": int((k == 2).sum()), "split": int(self.marks.split.sum())}

    def _token(self, tok: str) -> np.ndarray:
        n = len(self.flows)
        k = self.marks.kind
        if tok == "moved":
            return k > 0
        if tok == "reset":
            return k == 1
        if tok == "udp-moved":
            return k == 2
        if tok == "split":
            return self.marks.split
        if tok in SOURCE_WORDS:
            if self.sources is None:
                return np.full(n, SOURCE_WORDS[tok] == 0)
            return self.sources == SOURCE_WORDS[tok]
        hit = np.zeros(n, bool)
        if self.paths is not None:
            term = np.asarray([tok in t for t in self.paths.terminals], bool)
            hit |= term[self.paths.final]
        if not any(c in tok for c in " :→"):
            # the key's fields are separated by " ", ":" and " → ": such a token can only match inside one
            # field, so it is looked for in each field's distinct values (a few hundred), not in 100k keys
            return hit | self._field_hits(tok)
        keys = self._all_keys()
        hit[[i for i, s in enumerate(keys) if tok in s]] = True
        return hit

    def _vocab(self) -> list[tuple[list[str], np.ndarray]]:
        """Per field of :meth:`key`: (distinct texts, per flow the index of its text)."""
        if self._fields is None:
            f = self.flows
            out = [([proto_label(i) for i in range(256)], np.asarray(f.proto))]
            for col in (f.sport, f.dport):
                uniq, inv = np.unique(np.asarray(col), return_inverse=True)
                out.append(([str(int(p)) for p in uniq], inv))
            for col in (f.src, f.dst):
                rows = np.ascontiguousarray(col).view(np.dtype((np.void, 16))).ravel()
                uniq, first, inv = np.unique(rows, return_index=True, return_inverse=True)
                out.append(([_addr(col[int(i)], int(f.family[int(i)])) for i in first], inv))
            names, inv = np.unique(np.asarray([str(x) for x in self.ingress], dtype=object), return_inverse=True)
            out.append(([str(x) for x in names], inv))
            self._fields = out
        return self._fields

    def _field_hits(self, tok: str) -> np.ndarray:
        hit = np.zeros(len(self.flows), bool)
        for k, (texts, idx) in enumerate(self._vocab()):
            if k in (1, 2) and not tok.isdigit():
                continue  # ports are digits only
            match = np.fromiter((tok in t for t in texts), bool, len(texts))
            if match.any():
                hit |= match[idx]
        return hit

    def refilter(self) -> None:
        sel = np.ones(len(self.flows), bool)
        for tok in self.query.split():
            sel &= self._token(tok)
        rows = np.flatnonzero(sel)
        if self.sort == "moved first":
            rows = rows[np.argsort(self.marks.kind[rows] == 0, kind="stable")]
        elif self.sort == "server" and self.paths is not None:
            order = np.argsort(np.asarray(self.paths.terminals, dtype=object)).argsort()
            rows = rows[np.argsort(order[self.paths.final[rows]], kind="stable")]
        elif self.sort == "client":
            src = np.ascontiguousarray(self.flows.src[rows]).view(np.dtype((np.void, 16))).ravel()
            rows = rows[np.argsort(src, kind="stable")]
        self.rows = rows
        self.version += 1
