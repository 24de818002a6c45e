"""The house rules of ARCHITECTURE.md that a machine can check: the import graph and the registry leaf.

The graph is read from the source with :mod:`ast` (nothing is imported): every ``import``/``from ... import`` of
``edgecnn`` and ``converters`` modules, module-level ones and the lazy ones inside functions.

* No import cycle, counting the lazy imports inside functions too (a lazy import only delays a cycle: the two
  modules still need each other). Imports under ``if TYPE_CHECKING:`` never run and are not counted.
* A lower layer (imaging, modelcard, reports, metrics, runtime) never imports a higher one (bench, export,
  training, scale, cli), not even lazily.
* ``converters`` never imports ``edgecnn``; ``converters.registry`` imports nothing but the standard library, so
  the edge side may read it (rule 2's one exception).
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("edgecnn", "converters")
LOWER = ("edgecnn.imaging", "edgecnn.modelcard", "edgecnn.reports", "edgecnn.metrics", "edgecnn.runtime")
HIGHER = ("edgecnn.bench", "edgecnn.export", "edgecnn.training", "edgecnn.scale", "edgecnn.cli")


def _modules() -> dict[str, Path]:
    out = {}
    for pkg in PACKAGES:
        for path in sorted((ROOT / pkg).rglob("*.py")):
            parts = list(path.relative_to(ROOT).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            out[".".join(parts)] = path
    return out


MODULES = _modules()


def _within(name: str, prefixes: tuple[str, ...]) -> bool:
    return any(name == p or name.startswith(p + ".") for p in prefixes)


def _resolve(module: str, is_pkg: bool, node: ast.ImportFrom) -> str:
    if not node.level:
        return node.module or ""
    base = module.split(".")
    base = base[: len(base) - node.level + (1 if is_pkg else 0)]
    return ".".join(base + ([node.module] if node.module else []))


def _imports(module: str, path: Path) -> list[tuple[str, bool]]:
    """(imported module, at module level?) for every import of our packages in ``path`` that can run (those under
    ``if TYPE_CHECKING:`` are left out)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    is_pkg = path.name == "__init__.py"
    top_level: set[int] = set()

    def mark(body: list[ast.stmt]) -> None:  # statements run at import time (not inside def)
        for stmt in body:
            top_level.add(id(stmt))
            if isinstance(stmt, ast.If | ast.Try | ast.With | ast.For | ast.While):
                for field in ("body", "orelse", "finalbody"):
                    mark(getattr(stmt, field, []) or [])
                for h in getattr(stmt, "handlers", []):
                    mark(h.body)
            elif isinstance(stmt, ast.ClassDef):
                mark(stmt.body)

    mark(tree.body)
    out = []
    for node in ast.walk(tree):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = _resolve(module, is_pkg, node)
            names = [f"{base}.{a.name}" if f"{base}.{a.name}" in MODULES else base for a in node.names]
        for name in names:
            if name.split(".")[0] not in PACKAGES:
                continue
            while name not in MODULES and "." in name:
                name = name.rsplit(".", 1)[0]
            if name in MODULES and name != module and not _type_checking_only(tree, node):
                out.append((name, id(node) in top_level))
    return out


def _type_checking_only(tree: ast.Module, target: ast.stmt) -> bool:
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            if any(n is target for stmt in node.body for n in ast.walk(stmt)):
                return True
    return False


GRAPH = {m: _imports(m, p) for m, p in MODULES.items()}


def test_graph_sees_the_packages():
    assert {"edgecnn.runtime.backends", "edgecnn.export", "converters.registry"} <= set(MODULES)
    assert ("edgecnn.runtime.keras_model", True) in GRAPH["edgecnn.runtime.backends.keras"]
    assert ("edgecnn.devices", False) in GRAPH["edgecnn.runtime.resolve"]  # a lazy import, inside a function


def _cycles(edges: dict[str, list[str]]) -> list[list[str]]:
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    cycles: list[list[str]] = []
    sys.setrecursionlimit(max(sys.getrecursionlimit(), 10_000))

    def strong(v: str) -> None:  # Tarjan's strongly connected components
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in edges[v]:
            if w not in index:
                strong(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                cycles.append(sorted(comp))

    for v in edges:
        if v not in index:
            strong(v)
    return cycles


def test_no_import_cycle_lazy_imports_included():
    edges = {m: sorted({t for t, _ in deps}) for m, deps in GRAPH.items()}
    cycles = _cycles(edges)
    assert not cycles, f"import cycles (lazy imports counted): {cycles}"


def test_the_cycle_finder_sees_a_lazy_cycle():
    assert _cycles({"a": ["b"], "b": ["c"], "c": ["a"], "d": ["a"]}) == [["a", "b", "c"]]


def test_nothing_below_the_cli_imports_the_cli():
    bad = [(m, t) for m, deps in GRAPH.items() if not _within(m, ("edgecnn.cli", "edgecnn.__main__")) for t, _ in deps
           if _within(t, ("edgecnn.cli",))]
    assert not bad, f"imports of the CLI from below it: {bad}"


@pytest.mark.parametrize("lower", LOWER)
def test_lower_layers_never_import_higher_ones(lower):
    bad = [(m, t) for m, deps in GRAPH.items() if _within(m, (lower,)) for t, _ in deps if _within(t, HIGHER)]
    assert not bad, f"{lower} imports a higher layer: {bad}"


def test_converters_never_import_edgecnn():
    bad = [(m, t) for m, deps in GRAPH.items() if _within(m, ("converters",)) for t, _ in deps if _within(t, ("edgecnn",))]
    assert not bad, bad


def test_registry_is_a_pure_python_leaf():
    tree = ast.parse(MODULES["converters.registry"].read_text(encoding="utf-8"))
    imported = {a.name.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    imported |= {(n.module or "").split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
    assert imported <= set(sys.stdlib_module_names) | {"__future__"}, imported


# ---------------------------------------------------------------------- registries are the only source of names
#: The registries themselves: the one place each name is spelled.
REGISTRIES = {
    "converters/registry.py",  # formats, precisions (and their --quantize aliases), io dtypes
    "edgecnn/runtime/backends/__init__.py",  # backends
    "edgecnn/runtime/keras_model.py",  # the Keras model format
    "edgecnn/runtime/sources/kinds.py",  # source kinds
    "edgecnn/training/architectures.py",  # architectures
}
#: Tensor dtype names that are not precisions: a collection holding one is a dtype table, not a registry copy.
DTYPE_ONLY = {"uint8", "int16", "int32", "int64", "uint16", "float64", "bool", "string", "double"}


def _registry_names() -> set[str]:
    from converters.registry import FORMATS, PRECISIONS
    from edgecnn.runtime.backends import BACKENDS
    from edgecnn.training.architectures import ARCHITECTURES

    names = set(FORMATS) | set(PRECISIONS) | {p.alias for p in PRECISIONS.values()} | set(BACKENDS) | set(ARCHITECTURES)
    return names - {"none"}  # "none" is an ordinary word too


def _copies(tree: ast.AST, names: set[str]) -> list[tuple[int, list[str]]]:
    """Literal tuples/lists/sets/dicts and class bodies that spell two or more registry names: private copies."""
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Tuple | ast.List | ast.Set | ast.Dict):
            items = [*(node.keys if isinstance(node, ast.Dict) else []), *(node.values if isinstance(node, ast.Dict)
                                                                            else node.elts)]
        elif isinstance(node, ast.ClassDef):  # an Enum retyping a registry: class X(str, Enum): tflite = "tflite"
            items = [s.value for s in node.body if isinstance(s, ast.Assign)]
        else:
            continue
        strings = [i.value for i in items if isinstance(i, ast.Constant) and isinstance(i.value, str)]
        spelled = [s for s in strings if s in names]
        if len(set(spelled)) >= 2 and not DTYPE_ONLY & set(strings):
            found.append((node.lineno, sorted(set(spelled))))
    return found


def test_no_private_copy_of_a_registry():
    """No table of formats, precisions, backends or architectures outside its registry (docs and tests aside):
    the private precision tables of bench/export/devices and run's retyped BACKENDS enum drifted from theirs."""
    names = _registry_names()
    strays = []
    for path in sorted((ROOT / "edgecnn").rglob("*.py")) + sorted((ROOT / "converters").rglob("*.py")):
        rel = path.relative_to(ROOT).as_posix()
        if rel in REGISTRIES:
            continue
        strays += [f"{rel}:{line} spells {spelled}" for line, spelled in _copies(ast.parse(path.read_text("utf-8")), names)]
    assert not strays, ("Names copied out of their registry; build them from converters.registry.FORMATS/PRECISIONS, "
                        "runtime.backends.BACKENDS or training.architectures.ARCHITECTURES instead:\n" + "\n".join(strays))


def test_the_copy_detector_sees_a_copy():
    names = _registry_names()
    assert _copies(ast.parse('PRECISIONS = ("float32", "float16", "int8")'), names)
    assert _copies(ast.parse('class B(str, Enum):\n    tflite = "tflite"\n    onnx = "onnx"'), names)
    assert not _copies(ast.parse('TYPES = {1: "float32", 2: "uint8", 3: "int8"}'), names)  # a dtype table
