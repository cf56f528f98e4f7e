"""docs/architecture.md kept true: the import layers of ``irframe`` and no import cycles.

Imports are read with ``ast`` (nothing is imported): every ``import`` and ``from ... import`` of a
module, at module level or inside a function (a lazy import is a dependency all the same); imports
under ``if TYPE_CHECKING:`` never run, so they count for the layers (a type is a dependency on its
concept) but not for cycles. Importing ``irframe.a.b`` runs ``irframe/a/__init__.py`` first, so it
is an import of the package ``irframe.a`` too (unless the importer is inside ``irframe.a``).
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "irframe"

# The layers, lowest first (docs/architecture.md draws them). A module belongs to the layer of the
# longest name below that is the module itself or one of its packages; a module of no layer fails
# test_every_module_has_a_layer (place a new top-level module or package here deliberately).
LAYERS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("foundation", (
        "irframe.errors", "irframe.text", "irframe.utils", "irframe.threads", "irframe.heap", "irframe.launch",
    )),
    ("registry", ("irframe.registry",)),
    ("components", ("irframe.data", "irframe.nn", "irframe.metrics", "irframe.losses")),
    ("options", ("irframe.options_yaml", "irframe.options_schema", "irframe.options_checks", "irframe.compat",
                 "irframe.options")),
    ("engines", ("irframe.train", "irframe.evaluate")),
    ("commands", ("irframe.recipes", "irframe.zoo", "irframe.cli", "irframe.scaffold", "irframe.builtins",
                  "irframe.app")),
)
# Packages of one layer that stay independent of each other (neither imports the other).
SIBLINGS: tuple[tuple[str, str], ...] = (("irframe.train", "irframe.evaluate"),)
TOP = "irframe"  # the package itself: above every layer, and importing it imports nothing (lazy attributes)

# Function-level imports allowed to close a cycle, each with its reason: none today. Keep this small;
# a cycle is cut at its seam (see docs/architecture.md), not listed here.
ALLOWED_CYCLE_EDGES: dict[tuple[str, str], str] = {}


@dataclass(frozen=True)
class Import:
    source: str  # importing module
    target: str  # imported irframe module
    line: int
    type_only: bool  # under `if TYPE_CHECKING:`
    lazy: bool  # inside a function


def module_names() -> dict[str, Path]:
    """Every module of the package by dotted name (a package by its own name)."""
    out = {}
    for path in PACKAGE.rglob("*.py"):
        parts = list(path.relative_to(ROOT).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = path
    return out


def _resolve(name: str, modules: dict[str, Path]) -> str | None:
    while name and name not in modules:
        name = name.rpartition(".")[0]
    return name or None


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def imports_of(module: str, modules: dict[str, Path]) -> list[Import]:
    """The irframe modules ``module`` imports (see the module docstring for what counts)."""
    path = modules[module]
    is_package = path.name == "__init__.py"
    found: list[Import] = []

    def visit(node: ast.AST, type_only: bool, lazy: bool) -> None:
        if isinstance(node, ast.If) and _is_type_checking(node.test):
            for child in node.body:
                visit(child, True, lazy)
            for child in node.orelse:
                visit(child, type_only, lazy)
            return
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
            lazy = True
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = module.split(".") if is_package else module.split(".")[:-1]
                base = base[: len(base) - node.level + 1]
                origin = ".".join([*base, *([node.module] if node.module else [])])
            else:
                origin = node.module or ""
            # `from pkg import sub` imports the submodule pkg.sub
            names = [origin, *(f"{origin}.{alias.name}" for alias in node.names)]
        for name in names:
            if name == TOP or name.startswith(TOP + "."):
                target = _resolve(name, modules)
                if target is not None and target != module:
                    found.append(Import(module, target, node.lineno, type_only, lazy))  # type: ignore[attr-defined]
        for child in ast.iter_child_nodes(node):
            visit(child, type_only, lazy)

    visit(ast.parse(path.read_text(encoding="utf-8"), str(path)), False, False)
    # importing irframe.a.b runs irframe/a/__init__.py: an import of irframe.a (from outside it)
    with_parents: list[Import] = []
    for imp in found:
        with_parents.append(imp)
        parent = imp.target.rpartition(".")[0]
        while parent and parent != TOP:
            if not (module == parent or module.startswith(parent + ".")):
                with_parents.append(Import(module, parent, imp.line, imp.type_only, imp.lazy))
            parent = parent.rpartition(".")[0]
    unique: dict[tuple[str, bool], Import] = {}
    for imp in with_parents:  # one entry per target (the first line; a runtime import wins over a typing one)
        unique.setdefault((imp.target, imp.type_only), imp)
    return list(unique.values())


def layer_of(module: str) -> int | None:
    best: tuple[int, int] | None = None  # (prefix length, layer index)
    for index, (_name, prefixes) in enumerate(LAYERS):
        for prefix in prefixes:
            if (module == prefix or module.startswith(prefix + ".")) and (best is None or len(prefix) > best[0]):
                best = (len(prefix), index)
    if module == TOP:
        return len(LAYERS)
    return None if best is None else best[1]


def _where(imp: Import, modules: dict[str, Path]) -> str:
    return f"{modules[imp.source].relative_to(ROOT)}:{imp.line}"


def test_every_module_has_a_layer() -> None:
    missing = sorted(m for m in module_names() if layer_of(m) is None)
    assert not missing, f"modules in no layer (add them to LAYERS and docs/architecture.md): {missing}"


def test_a_lower_layer_never_imports_a_higher_one() -> None:
    modules = module_names()
    wrong = []
    for module in modules:
        for imp in imports_of(module, modules):
            low, high = layer_of(module), layer_of(imp.target)
            if low is not None and high is not None and high > low:
                wrong.append(
                    f"{_where(imp, modules)}: {module} ({_layer_name(low)}) imports {imp.target} ({_layer_name(high)})"
                )
    assert not wrong, "a lower layer imports a higher one (docs/architecture.md):\n  " + "\n  ".join(wrong)


def test_sibling_packages_do_not_import_each_other() -> None:
    modules = module_names()
    wrong = []
    for a, b in SIBLINGS:
        for source, target in ((a, b), (b, a)):
            for module in modules:
                if module == source or module.startswith(source + "."):
                    wrong += [
                        f"{_where(imp, modules)}: {module} imports {imp.target}"
                        for imp in imports_of(module, modules)
                        if imp.target == target or imp.target.startswith(target + ".")
                    ]
    assert not wrong, "packages meant to stay independent import each other:\n  " + "\n  ".join(wrong)


def _layer_name(index: int) -> str:
    return LAYERS[index][0] if index < len(LAYERS) else "the irframe package"


def test_importing_irframe_imports_nothing_at_module_level() -> None:
    modules = module_names()
    eager = [imp for imp in imports_of(TOP, modules) if not imp.lazy and not imp.type_only]
    assert not eager, f"irframe/__init__.py imports at module level: {[i.target for i in eager]}"


def test_no_import_cycles() -> None:
    modules = module_names()
    graph: dict[str, dict[str, Import]] = {m: {} for m in modules}
    for module in modules:
        for imp in imports_of(module, modules):
            if not imp.type_only and (module, imp.target) not in ALLOWED_CYCLE_EDGES:
                graph[module].setdefault(imp.target, imp)
    cycles = _cycles(graph)
    shown = []
    for cycle in cycles:
        hops = [graph[a][b] for a, b in zip(cycle, [*cycle[1:], cycle[0]])]
        shown.append(
            " -> ".join([*cycle, cycle[0]])
            + " ("
            + "; ".join(f"{_where(h, modules)}{' lazy' if h.lazy else ''}" for h in hops)
            + ")"
        )
    assert not cycles, "import cycles between irframe modules (cut them at their seam):\n  " + "\n  ".join(shown)


def test_allowed_cycle_edges_are_real_and_explained() -> None:
    modules = module_names()
    for (source, target), reason in ALLOWED_CYCLE_EDGES.items():
        assert len(reason) > 20, f"{source} -> {target}: say why this import may close a cycle"
        imports = {i.target: i for i in imports_of(source, modules)}
        assert target in imports and imports[target].lazy, f"{source} -> {target}: not a lazy import (any more)"


def _cycles(graph: dict[str, dict[str, Import]]) -> list[list[str]]:
    """One cycle through each strongly connected component of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[list[str]] = []
    counter = [0]

    def connect(v: str) -> None:  # recursion depth is bounded by the module count (~150)
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on_stack.add(v)
        for w in graph[v]:
            if w not in index:
                connect(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                components.append(component)

    for v in sorted(graph):
        if v not in index:
            connect(v)
    return [_one_cycle(graph, set(c)) for c in components]


def _one_cycle(graph: dict[str, dict[str, Import]], members: set[str]) -> list[str]:
    """A shortest cycle inside one strongly connected component (breadth-first from its first module)."""
    start = min(members)
    paths = {start: [start]}
    queue = [start]
    while queue:
        v = queue.pop(0)
        for w in sorted(graph[v]):
            if w == start:
                return paths[v]
            if w in members and w not in paths:
                paths[w] = [*paths[v], w]
                queue.append(w)
    return sorted(members)  # pragma: no cover - a strongly connected component always has a cycle
