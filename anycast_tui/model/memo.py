"""Memos of values derived from immutable device states, for views that ask again on every redraw.

``IdentityMemo`` keys by an object's identity; the memos made by :func:`state_memo` hold values of device
states, and :func:`retain` (called by a view with the snapshots it shows) forgets those of states no longer
shown, so a memo never keeps a replaced state alive.  :func:`routes_to` is one.
"""

from __future__ import annotations

from typing import Any, Callable, Hashable, Iterable, TypeVar

from anycast_tui.model.types import DeviceState, FabricSnapshot, Route, select_routes

T = TypeVar("T")


class IdentityMemo:
    """A bounded memo keyed by an object's identity and a key; it holds the object, so an id is never
    reused while its entry lives.  For values derived from immutable states (DeviceState, snapshots):
    a view asks again for the same state on every redraw, and a poll replaces only what changed."""

    def __init__(self, size: int = 8192) -> None:
        self.size = size
        self._d: dict[tuple[int, Hashable], tuple[object, Any]] = {}

    def get(self, obj: object, key: Hashable, fn: Callable[[], T]) -> T:
        """The value memoised for ``obj`` (by identity) and ``key``; else ``fn()``, memoised."""
        k = (id(obj), key)
        hit = self._d.get(k)
        if hit is not None and hit[0] is obj:
            return hit[1]
        value = fn()
        if len(self._d) >= self.size:
            for old in list(self._d)[: max(1, self.size // 4)]:  # oldest quarter
                del self._d[old]
        self._d[k] = (obj, value)
        return value

    def __len__(self) -> int:
        """How many entries the memo holds."""
        return len(self._d)

    def retain(self, ids: set[int]) -> None:
        """Forget every entry whose object's id is not in ``ids``."""
        self._d = {k: v for k, v in self._d.items() if k[0] in ids}


_STATE_MEMOS: list[IdentityMemo] = []


def state_memo(size: int = 2048) -> IdentityMemo:
    """A memo of values derived from device states, forgotten by :func:`retain` with the states."""
    memo = IdentityMemo(size)
    _STATE_MEMOS.append(memo)
    return memo


def retain(snapshots: Iterable[FabricSnapshot | None]) -> None:
    """Forget what is memoised for states in none of ``snapshots`` (a view calls it with the snapshots it
    shows, so the memos never keep a replaced state alive)."""
    keep = {id(st) for snap in snapshots if snap is not None for st in snap.devices.values()}
    for memo in _STATE_MEMOS:
        memo.retain(keep)


_ROUTES = state_memo(2048)  # (state, prefix): the current snapshot and the selected event's two


def routes_to(state: DeviceState, prefix: str) -> tuple[Route, ...]:
    """``state``'s routes whose destination is ``prefix``, looked for once per state and prefix (the views
    ask for the few anycast prefixes many times; an index of every destination would cost more to build)."""
    return _ROUTES.get(state, prefix, lambda: select_routes(state.routes, (prefix,)))
