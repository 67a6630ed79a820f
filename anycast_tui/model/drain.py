"""Safest order to drain several next hops (or devices) one after another (pure).

Greedy: at each step, of the changes not yet applied, the one whose
:func:`~anycast_tui.model.impact.what_if` moves the fewest flows on the
fabric as left by the previous steps (ties: fewer TCP resets, then the
given order).  ``total`` adds the moved flows of every step (a flow moved
twice counts twice: it was disturbed twice).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

from anycast_tui.model.flowarray import FlowArray
from anycast_tui.model.impact import what_if
from anycast_tui.model.whatif import WhatIf, apply
from anycast_tui.model.paths import Ingress
from anycast_tui.model.placement import HashCache
from anycast_tui.model.types import FabricSnapshot


@dataclass(frozen=True, slots=True)
class Step:
    change: WhatIf
    moved: int
    tcp_reset: int
    total: int  # moved flows of this and every earlier step


def drain_order(snapshot: FabricSnapshot, changes: Sequence[WhatIf], flows: FlowArray,
                ingress: Ingress) -> list[Step]:
    """The greedy safest order of ``changes`` (see module doc)."""
    cache = HashCache(flows)
    left = list(changes)
    steps: list[Step] = []
    total = 0
    snap = snapshot
    while left:
        best = None
        for i, ch in enumerate(left):
            c = what_if(snap, ch, flows, ingress, cache=cache).counts
            key = (c["moved"], c["tcp_reset"], i)
            if best is None or key < best[0]:
                best = (key, i, c)
        assert best is not None
        _, i, c = best
        ch = left.pop(i)
        total += c["moved"]
        steps.append(Step(ch, c["moved"], c["tcp_reset"], total))
        snap = apply(snap, ch)
    return steps
