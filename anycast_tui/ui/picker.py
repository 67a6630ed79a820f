"""The failure picker (demo and lab fabrics): enter fails or restores the highlighted target."""

from __future__ import annotations

from typing import Callable, Sequence

from textual.app import ComposeResult
from textual.binding import Binding
from textual.screen import ModalScreen
from textual.widgets import OptionList
from textual.widgets.option_list import Option


class FailPicker(ModalScreen[str | None]):
    """Lists ``targets`` with their state; dismisses with the chosen name (None on escape)."""

    BINDINGS = [Binding("escape", "dismiss(None)", "close"), Binding("f", "dismiss(None)", "close", show=False)]

    def __init__(self, targets: Sequence[str], is_failed: Callable[[str], bool]) -> None:
        super().__init__()
        self.targets = list(targets)
        self.is_failed = is_failed

    def compose(self) -> ComposeResult:
        opts = [Option(f"{'✗' if self.is_failed(t) else '●'} {t:<10} "
                       f"{'failed: enter restores' if self.is_failed(t) else 'up: enter fails it'}", id=t)
                for t in self.targets]
        ol = OptionList(*opts, id="picker")
        ol.border_title = "fail / restore"
        ol.border_subtitle = "enter · esc"
        yield ol

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        self.dismiss(event.option.id)
