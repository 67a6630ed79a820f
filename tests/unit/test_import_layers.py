"""Imports follow the layers (ARCHITECTURE.md), and no modules import each other.

Layers, bottom to top; a module may import its own layer and the layers listed for it, nothing else:

* ``base``: ``anycast_tui/__init__.py`` (the version) and ``anycast_tui/errors.py`` (``CliError``), ``anycast_tui/safetext.py`` (device text on one line);
  imports nothing of the package, and every layer may import it;
* ``model``: pure computation and the typed records;
* ``parse``: text in, records out (may import ``model``);
* ``collect``: getting the text (may import ``parse``, ``model``);
* ``events``: ``session.py``, ``impacttracker.py``, ``incidenttracker.py``, ``healthwatch.py``, ``sampledtraffic.py``, ``metrics.py`` (may import ``collect``, ``parse``, ``model``);
* ``record``: session files, replay, report (may import the layers below); ``fleet/`` (NATS collectors and
  viewers) sits here too: its wire format is the recording codec's;
* ``ui``: may import ``record`` and the layers below, never ``commands`` / ``cli`` / ``lab``;
* ``lab``: the simulator and the namespace lab (may import ``events``, ``collect``, ``parse``, ``model``);
* ``cli``: ``commands/``, ``cli.py``, ``__main__.py`` (may import anything).

Every ``import`` / ``from ... import`` statement counts, wherever it stands: at module level, inside a function
(a lazy import is still a dependency), and inside ``if TYPE_CHECKING:`` -- a type-only import may NOT point up
or close a circle either: an annotation that names a higher layer's type means the lower layer's contract is
defined above it (the fix is to move the type down, as ``RibWatch`` moved into ``model/types.py``).

``from anycast_tui.parse import ss`` names the submodule ``anycast_tui.parse.ss`` when that is a module of
the package, else the package's ``__init__``.  Importing a submodule also runs its package's ``__init__``;
that implicit step is not counted (a package's ``__init__`` importing its own submodules is no circle unless
a submodule imports a name defined in that ``__init__``).  Imports made with ``importlib`` (``cli.py``
loads ``commands.<name>`` so) are not seen; they are allowed from ``cli`` anyway.

No circles: the module graph (every import above, self-imports included) has no cycle, of two modules or
longer.  Pure ``ast``: nothing of the package is imported.
"""

from __future__ import annotations

import ast
from pathlib import Path

PKG = "anycast_tui"
ROOT = Path(__file__).resolve().parents[2] / PKG

ORDER = ("base", "model", "parse", "collect", "events", "record")
ALLOWED: dict[str, frozenset[str]] = {
    **{layer: frozenset(ORDER[: i + 1]) for i, layer in enumerate(ORDER)},
    "ui": frozenset((*ORDER, "ui")),
    "lab": frozenset(("base", "model", "parse", "collect", "events", "lab")),
    "cli": frozenset((*ORDER, "ui", "lab", "cli")),
}
_LAYERS_UP = {have: [x for x in (*ORDER, "ui", "lab", "cli") if x in ALLOWED[have] and x != have] for have in ALLOWED}
# The first name below the package -> its layer.
LAYER_OF: dict[str, str] = {
    "": "base", "errors": "base", "safetext": "base",
    "model": "model", "parse": "parse", "collect": "collect",
    "session": "events", "incidenttracker": "events", "sampledtraffic": "events", "metrics": "events",
    "impacttracker": "events", "healthwatch": "events",
    "record": "record", "fleet": "record", "ui": "ui", "lab": "lab",
    "commands": "cli", "cli": "cli", "__main__": "cli",
}


def _modules() -> dict[str, Path]:
    """Dotted name -> file, for every module of the package (a package is its ``__init__.py``)."""
    out = {}
    for path in sorted(ROOT.rglob("*.py")):
        parts = [PKG, *path.relative_to(ROOT).with_suffix("").parts]
        if parts[-1] == "__init__":
            parts.pop()
        out[".".join(parts)] = path
    return out


MODULES = _modules()


def _imports(name: str, path: Path) -> list[tuple[str, int]]:
    """(imported module of the package, line) for every import statement of the module, wherever it stands."""
    is_pkg = path.name == "__init__.py"
    here = name if is_pkg else name.rpartition(".")[0]
    out = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            out += [(a.name, node.lineno) for a in node.names if a.name == PKG or a.name.startswith(PKG + ".")]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = here.split(".")[: len(here.split(".")) - (node.level - 1)]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            if target != PKG and not target.startswith(PKG + "."):
                continue
            for alias in node.names:
                sub = f"{target}.{alias.name}"
                out.append((sub if sub in MODULES else target, node.lineno))
    return out


def _graph() -> dict[str, dict[str, int]]:
    """module -> {imported module -> first line importing it}."""
    graph: dict[str, dict[str, int]] = {}
    for name, path in MODULES.items():
        edges = graph.setdefault(name, {})
        for target, line in _imports(name, path):
            edges.setdefault(target, line)
    return graph


def _layer(module: str) -> str | None:
    rest = module[len(PKG) + 1:] if module != PKG else ""
    return LAYER_OF.get(rest.split(".")[0])


def _where(module: str, line: int) -> str:
    return f"{MODULES[module].relative_to(ROOT.parent)}:{line}"


def _cycles(graph: dict[str, dict[str, int]]) -> list[list[str]]:
    """Each strongly connected component of more than one module (or a module importing itself), as one
    cycle through it: the shortest way back to its first module."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[list[str]] = []

    def visit(root: str) -> None:  # Tarjan's algorithm, iterative (no recursion limit on a deep package)
        work = [(root, iter(sorted(graph.get(root, {}))))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            v, it = work[-1]
            for w in it:
                if w not in graph:
                    continue
                if w not in index:
                    index[w] = low[w] = len(index)
                    stack.append(w)
                    on_stack.add(w)
                    work.append((w, iter(sorted(graph[w]))))
                    break
                if w in on_stack:
                    low[v] = min(low[v], index[w])
            else:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[v])
                if low[v] == index[v]:
                    comp = []
                    while True:
                        w = stack.pop()
                        on_stack.discard(w)
                        comp.append(w)
                        if w == v:
                            break
                    if len(comp) > 1 or v in graph[v]:
                        components.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    cycles = []
    for comp in components:
        start, members = comp[0], set(comp)
        # breadth-first from start's imports back to start, inside the component
        prev: dict[str, str] = {}
        frontier = [start]
        found = None
        while frontier and found is None:
            nxt = []
            for v in frontier:
                for w in sorted(graph[v]):
                    if w == start:
                        found = v
                        break
                    if w in members and w not in prev:
                        prev[w] = v
                        nxt.append(w)
                if found is not None:
                    break
            frontier = nxt
        path = [start]
        v = found
        while v is not None and v != start:
            path.insert(1, v)
            v = prev.get(v)
        cycles.append(path + [start])
    return cycles


GRAPH = _graph()


def test_every_module_has_a_layer():
    missing = sorted(m for m in MODULES if _layer(m) is None)
    assert not missing, f"modules of no layer (add them to LAYER_OF, and to ARCHITECTURE.md): {missing}"


def test_imports_point_down_the_layers():
    bad = []
    for module, edges in sorted(GRAPH.items()):
        have = _layer(module)
        for target, line in sorted(edges.items()):
            want = _layer(target)
            if have is None or want is None or want in ALLOWED[have]:
                continue
            bad.append(f"  {_where(module, line)}: {module} ({have}) imports {target} ({want}); "
                       f"{have} may import only {', '.join(_LAYERS_UP[have])} and itself")
    assert not bad, f"{len(bad)} import(s) against the layers:\n" + "\n".join(bad)


def test_no_import_circles():
    bad = []
    for cycle in _cycles(GRAPH):
        steps = [f"{a} ({_where(a, GRAPH[a][b])})" for a, b in zip(cycle, cycle[1:])]
        bad.append("  " + " -> ".join(steps + [cycle[-1]]))
    assert not bad, f"{len(bad)} import circle(s):\n" + "\n".join(bad)


def test_the_scan_sees_lazy_type_only_and_package_imports():
    """The scanner itself, on modules whose imports are known: a function-level import, a TYPE_CHECKING
    import and ``from package import submodule`` are all edges; a name from a package's __init__ is the
    package."""
    assert f"{PKG}.collect.ansible" in GRAPH[f"{PKG}.collect.inventory"]  # inside _ansible()
    assert f"{PKG}.record.reader" in GRAPH[f"{PKG}.record.incidentlog"]  # under `if TYPE_CHECKING:`
    assert f"{PKG}.parse.ss" in GRAPH[f"{PKG}.parse.detect"]  # from anycast_tui.parse import conntrack, frr, ss
    assert f"{PKG}.parse.detect" in GRAPH[f"{PKG}.parse"]
    assert _cycles({"a": {"b": 1}, "b": {"c": 1}, "c": {"a": 1}, "d": {"d": 1}, "e": {"a": 1}}) == [
        ["a", "b", "c", "a"], ["d", "d"]]
