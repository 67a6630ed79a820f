"""The What-if view: pick a next hop or device and an action; see its blast radius per mapping.

Candidates are the engine's :func:`each_single_failure`; every computation
(:func:`compare_mappings`, :func:`what_if` for "each, one at a time",
:func:`drain_order` for the marked ones) runs on a worker thread.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Callable

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, VerticalScroll
from textual.widgets import OptionList, Static
from textual.widgets.option_list import Option

from anycast_tui.model.impact import compare_mappings, what_if
from anycast_tui.model.whatif import WhatIf, WhatIfError, WhatIfKind, each_single_failure
from anycast_tui.model.paths import neighbour_names
from anycast_tui.model.types import FabricSnapshot
from anycast_tui.model.hashspace import group_space
from anycast_tui.ui import palette as pal
from anycast_tui.ui.view import address_owners

ACTIONS = ("fail", "restore", "weight ×2")
MAPPING_NAMES = {"actual": "current mapping", "modulo-n": "modulo-N", "hash-threshold": "hash-threshold",
                 "resilient": "resilient (128 buckets)", "maglev": "consistent (maglev)"}
EACH = "each, one at a time"

Context = Callable[[], tuple[FabricSnapshot | None, object, object]]  # snapshot, flows, ingress


def with_action(change: WhatIf, action: str) -> WhatIf:
    """The candidate ``change`` (a failure) turned into ``action``."""
    if action == "fail" or change.kind is WhatIfKind.FAIL_DEVICE:
        return change
    if action == "restore":
        return replace(change, kind=WhatIfKind.RESTORE_NEXTHOP)
    return replace(change, kind=WhatIfKind.SET_WEIGHT, weight=2)


def _anycast_first(changes: list[WhatIf], snap: FabricSnapshot, prefixes: tuple[str, ...]) -> list[WhatIf]:
    """Next hops of the anycast prefixes' groups first, then devices, then every other next hop."""
    hops = set()
    for st in snap.devices.values():
        for p in prefixes:
            sp = group_space(st, p, cells=1)
            if sp is not None:
                hops |= {(st.device.name, m.label) for m in sp.members}

    def rank(c: WhatIf) -> int:
        if c.kind is WhatIfKind.FAIL_DEVICE:
            return 1
        return 0 if (c.device, c.target) in hops else 2

    return sorted(changes, key=rank)


def mapping_table(results: list) -> Text:  # list[MappingImpact]
    t = Text(no_wrap=True, overflow="ellipsis")
    t.append(f"{'mapping':<26}{'moved':>8}{'TCP reset':>11}{'UDP':>8}{'collateral':>12}\n", style="bold")
    best = min(r.moved for r in results) if results else 0
    for r in results:
        style = f"bold {pal.OK}" if r.moved == best else ""
        mark = "✓ " if r.moved == best else "  "
        t.append(f"{mark}{MAPPING_NAMES.get(r.name, r.name):<24}", style=style)
        t.append(f"{r.moved:>8}{r.tcp_reset:>11}{r.udp:>8}{r.collateral:>12}\n", style=style)
    return t


class WhatIfView(Horizontal):
    """Candidates on the left, results on the right (stacked when narrow)."""

    BINDINGS = [
        Binding("enter", "run", "blast radius", id="whatif.run"),
        Binding("t", "action", "action", id="whatif.action", tooltip="cycle the action: fail, restore, weight ×2"),
        Binding("m", "mark", "mark", id="whatif.mark", tooltip="mark / unmark for the safest drain order"),
        Binding("d", "drain", "drain order", id="whatif.drain", tooltip="safest order to drain the marked ones"),
    ]

    def __init__(self, context: Context, *, prefixes: tuple[str, ...] = (), id: str | None = None) -> None:
        super().__init__(id=id)
        self.prefixes = prefixes
        self.context = context
        self.action_name = ACTIONS[0]
        self.candidates: list[WhatIf] = []
        self.marked: set[WhatIf] = set()
        self.result: Text = Text("choose a next hop or device, then enter", style="dim")
        self.busy = False
        self._snapshot: FabricSnapshot | None = None
        self._owners: dict[str, str] = {}
        self._hops: dict[tuple[str, str], str] = {}

    def compose(self) -> ComposeResult:
        ol = OptionList(id="whatif-list", markup=False)  # device names and addresses are data, not markup
        ol.border_title = "fail"
        yield ol
        with VerticalScroll(id="whatif-right"):
            yield Static(self.result, id="whatif-result")

    def refresh_candidates(self) -> None:
        """Rebuild the list from the current snapshot (keeps the highlighted row)."""
        snap, _, _ = self.context()
        if snap is None or snap is self._snapshot:
            return
        self._snapshot = snap
        self._owners = address_owners(snap)
        self.candidates = _anycast_first(each_single_failure(snap), snap, self.prefixes)
        self._hops = neighbour_names(((c.device, c.target) for c in self.candidates), self._owners)
        ol = self.query_one(OptionList)
        keep = ol.highlighted
        ol.clear_options()
        ol.add_options([Option(EACH, id="each")] + [Option(self._label(c), id=str(i))
                                                    for i, c in enumerate(self.candidates)])
        ol.highlighted = keep if keep is not None and keep < ol.option_count else 0

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        event.stop()
        self.action_run()

    def _label(self, c: WhatIf) -> str:
        text = with_action(c, self.action_name).label
        owner = self._owners.get(c.target or "")
        if owner:
            text = text.replace(f" {c.target}", f" {owner} ({c.target})", 1)
        return ("● " if c in self.marked else "  ") + text

    def _named(self, change: WhatIf) -> str:
        """A result row's change: its next hop named by the neighbour it leads to (``neighbour_names``)."""
        name = self._hops.get((change.device, change.target or ""))
        return change.label.replace(f" {change.target}", f" {name}", 1) if name else change.label

    def selected(self) -> WhatIf | None:
        """The highlighted candidate (None for "each, one at a time")."""
        i = self.query_one(OptionList).highlighted
        if i is None or i == 0:
            return None
        return self.candidates[i - 1]

    def _show(self, text: Text) -> None:
        self.result = text
        self.query_one("#whatif-result", Static).update(text)

    def action_action(self) -> None:
        self.action_name = ACTIONS[(ACTIONS.index(self.action_name) + 1) % len(ACTIONS)]
        self.query_one(OptionList).border_title = self.action_name
        self._relabel()

    def action_mark(self) -> None:
        c = self.selected()
        if c is None:
            return
        self.marked ^= {c}
        self._relabel()

    def _relabel(self) -> None:
        ol = self.query_one(OptionList)
        for i, c in enumerate(self.candidates):
            ol.replace_option_prompt(str(i), self._label(c))

    def action_run(self) -> None:
        c = self.selected()
        snap, flows, ingress = self.context()
        if snap is None or flows is None or ingress is None:
            self._show(Text("no flows to compute with yet", style="dim"))
            return
        if c is None:
            self._show(Text(f"computing {EACH} ({len(self.candidates)})…", style="dim"))
            self._start(lambda: self._each(snap, flows, ingress))
            return
        change = with_action(c, self.action_name)
        self._show(Text(f"computing {self._named(change)}…", style="dim"))
        self._start(lambda: self._compare(snap, change, flows, ingress))

    def action_drain(self) -> None:
        snap, flows, ingress = self.context()
        marked = [c for c in self.candidates if c in self.marked]
        if snap is None or flows is None or not marked:
            self._show(Text("mark next hops or devices with m first", style="dim"))
            return
        self._show(Text(f"computing the safest order of {len(marked)}…", style="dim"))
        self._start(lambda: self._drain(snap, marked, flows, ingress))

    def _start(self, fn: Callable[[], Text]) -> None:
        self.busy = True

        def work() -> None:
            try:
                text = fn()
            except WhatIfError as exc:
                text = Text(str(exc), style=pal.WARN)
            self.app.call_from_thread(self._done, text)

        self.run_worker(work, thread=True, exclusive=True, group="whatif")

    def _done(self, text: Text) -> None:
        self.busy = False
        self._show(text)

    def _compare(self, snap: FabricSnapshot, change: WhatIf, flows, ingress) -> Text:  # noqa: ANN001
        res = compare_mappings(snap, change, flows, ingress)
        t = Text(f"{self._named(change)}: blast radius of {len(flows)} flows\n\n", style="bold")
        t.append_text(mapping_table(res))
        return t

    def _each(self, snap: FabricSnapshot, flows, ingress) -> Text:  # noqa: ANN001
        rows = []
        for c in self.candidates:
            change = with_action(c, self.action_name)
            try:
                rows.append((what_if(snap, change, flows, ingress).counts, change))
            except WhatIfError:
                continue
        rows.sort(key=lambda r: (r[0]["moved"], r[0]["tcp_reset"]))
        t = Text(f"{EACH}: {len(rows)} changes, fewest moved first ({len(flows)} flows, current mapping)\n\n",
                 style="bold", no_wrap=True, overflow="ellipsis")
        t.append(f"{'moved':>7}{'TCP reset':>11}{'collat.':>9}  change\n", style="bold")
        for c, ch in rows:
            t.append(f"{c['moved']:>7}{c['tcp_reset']:>11}{c['collateral']:>9}  {self._named(ch)}\n")
        return t

    def _drain(self, snap: FabricSnapshot, marked: list[WhatIf], flows, ingress) -> Text:  # noqa: ANN001
        from anycast_tui.model.drain import drain_order

        steps = drain_order(snap, marked, flows, ingress)
        t = Text(f"safest drain order of {len(steps)} ({len(flows)} flows)\n\n", style="bold")
        t.append(f"{'step':>4}{'moved':>8}{'TCP reset':>11}{'total':>8}  change\n", style="bold")
        for i, s in enumerate(steps, 1):
            t.append(f"{i:>4}{s.moved:>8}{s.tcp_reset:>11}{s.total:>8}  {self._named(s.change)}\n")
        return t
