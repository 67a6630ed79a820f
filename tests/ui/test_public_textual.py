"""The UI uses public Textual only (issue 15 item 2), so textual can float within a minor range.

Read with ``ast`` from anycast_tui/ui/*.py: no import of a private Textual module (``textual._x``,
``textual.widgets._x``) or private name (``from textual.x import _y``); no ``_name`` reached through
anything but ``self``/``cls`` (``self.app._x``, ``widget._x``, ``getattr(w, "_x")``); the private
structures the app once used, by name; and no ``self._name`` of ours that a Textual base class of the
same class defines or sets (that would use, or clobber, Textual's internals).
"""

from __future__ import annotations

import ast
import importlib
import inspect
import re
from functools import cache
from pathlib import Path

import anycast_tui.ui

UI = Path(anycast_tui.ui.__file__).parent
FILES = sorted(UI.glob("*.py"))
# the private Textual structures the app used before (App._filters, BindingsMap.key_to_bindings of
# DOMNode._bindings, Widget._scroll_update, App._keymap): never again, whatever they are reached through
KNOWN_PRIVATE = {"_filters", "_bindings", "key_to_bindings", "_scroll_update", "_keymap"}


def _private(name: str) -> bool:
    return name.startswith("_") and not (name.startswith("__") and name.endswith("__"))


def violations(source: str, filename: str = "<ui>") -> list[str]:
    """Each private Textual use in ``source`` (a module of anycast_tui/ui), as ``file:line: what``."""
    out: list[str] = []
    for node in ast.walk(ast.parse(source, filename)):
        at = f"{filename}:{getattr(node, 'lineno', 0)}"
        if isinstance(node, ast.Import):
            for alias in node.names:
                parts = alias.name.split(".")
                if parts[0] == "textual" and any(_private(p) for p in parts):
                    out.append(f"{at}: import of private module {alias.name}")
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            parts = node.module.split(".")
            if parts[0] != "textual":
                continue
            if any(_private(p) for p in parts):
                out.append(f"{at}: import from private module {node.module}")
            for alias in node.names:
                if _private(alias.name):
                    out.append(f"{at}: private name {alias.name} from {node.module}")
        elif isinstance(node, ast.Attribute):
            if node.attr in KNOWN_PRIVATE:
                out.append(f"{at}: private Textual structure .{node.attr}")
            elif _private(node.attr) and not (isinstance(node.value, ast.Name) and node.value.id in ("self", "cls")):
                out.append(f"{at}: private attribute reached from outside: {ast.unparse(node)}")
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and \
                node.func.id in ("getattr", "setattr", "hasattr", "delattr") and len(node.args) >= 2:
            name = node.args[1]
            if isinstance(name, ast.Constant) and isinstance(name.value, str) and \
                    (_private(name.value) or name.value in KNOWN_PRIVATE):
                out.append(f"{at}: {node.func.id}(…, {name.value!r})")
    return out


def test_no_private_textual_in_the_ui_package():
    found = [v for f in FILES for v in violations(f.read_text(), f.name)]
    assert found == []


@cache
def _textual_private_names(cls: type) -> frozenset[str]:
    """The private names a Textual class defines or sets on ``self`` (its own source)."""
    names = {k for k in vars(cls) if _private(k)}
    try:
        names |= set(re.findall(r"\bself\.(_[A-Za-z]\w*)", inspect.getsource(cls)))
    except (OSError, TypeError):
        pass
    return frozenset(names)


# set on every class by Textual's metaclass/__init_subclass__ (the class's own BINDINGS, CSS…), not by us
CLASS_MACHINERY = {"_decorated_handlers", "_reactives", "_inherit_css", "_inherit_bindings",
                   "_inherit_component_classes", "_css_type_name", "_merged_bindings", "_css_type_names",
                   "_computes"}


def test_our_private_names_do_not_touch_textual_ones():
    clashes = []
    for f in FILES:
        module = importlib.import_module(f"anycast_tui.ui.{f.stem}")
        for node in ast.walk(ast.parse(f.read_text(), f.name)):
            if not isinstance(node, ast.ClassDef):
                continue
            cls = getattr(module, node.name, None)
            bases = [b for b in getattr(cls, "__mro__", ())[1:] if b.__module__.split(".")[0] == "textual"]
            if not bases:
                continue
            ours = {n.attr for n in ast.walk(node) if isinstance(n, ast.Attribute) and _private(n.attr)
                    and isinstance(n.value, ast.Name) and n.value.id == "self"}
            ours |= {n.name for n in node.body if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))
                     and _private(n.name)}
            ours |= {t.id for n in node.body if isinstance(n, (ast.Assign, ast.AnnAssign))
                     for t in (n.targets if isinstance(n, ast.Assign) else [n.target])
                     if isinstance(t, ast.Name) and _private(t.id)}
            theirs = set().union(*(_textual_private_names(b) for b in bases)) - CLASS_MACHINERY
            clashes += [f"{f.name}: {node.name}.{name}" for name in sorted(ours & theirs)]
    assert clashes == []


def test_the_check_finds_what_it_is_meant_to():
    bad = """
import textual._compositor
from textual._types import CallbackType
from textual.widgets._select import Select
from textual.app import _x
class A:
    def f(self, w):
        self._filters.append(1)
        self._bindings.key_to_bindings.items()
        self._scroll_update(1)
        self.app._keymap
        w._size
        getattr(w, "_size")
"""
    got = violations(bad, "bad.py")
    for want in ("private module textual._compositor", "private module textual._types",
                 "private module textual.widgets._select", "private name _x", "._filters", "._bindings",
                 ".key_to_bindings", "._scroll_update", "._keymap", "w._size", "getattr(…, '_size')"):
        assert any(want in v for v in got), (want, got)
    fine = """
from textual.app import App
from textual.filter import Monochrome
class A(App):
    _mine = None
    def f(self):
        self._mine = super().__init__
"""
    assert violations(fine) == []
