"""The package's import graph has no cycle, counting imports inside functions too: a cycle
hidden by a function-level import is still two modules that cannot be understood apart.  And an
import of the package's own modules sits inside a function only where it is the boundary to a
third-party library the importing module does not load (torch, numpy, hydra, ...)."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest
from helpers import REPO

PACKAGE = REPO / "tasnet_sweep"
#: entry points that import some of the package inside functions on purpose: the CLI answers
#: --help and config errors without loading what a trial needs, the Hydra app loads trial and
#: tracking when a job runs, make_backend loads only the backend the config names, and a cache
#: hit (trial.run) loads neither the tiling chain nor the estimate's allocator model
LEAN_ENTRY_POINTS = ("tasnet_sweep.cli", "tasnet_sweep.app", "tasnet_sweep.compile",
                     "tasnet_sweep.trial", "tasnet_sweep.compile.estimate.backend")


def _modules() -> dict[str, Path]:
    found = {}
    for path in PACKAGE.rglob("*.py"):
        if "conf" in path.relative_to(PACKAGE).parts[:1]:
            continue
        parts = path.relative_to(REPO).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        found[name] = path
    return found


def import_graph() -> dict[str, set[str]]:
    """module -> the package modules it imports anywhere in its body."""
    modules = _modules()
    graph: dict[str, set[str]] = {m: set() for m in modules}
    for name, path in modules.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = package.split(".")
                base = base[:len(base) - node.level + 1] if node.level else []
                base = ".".join([*base, *([node.module] if node.module else [])])
                subs = [f"{base}.{a.name}" for a in node.names if f"{base}.{a.name}" in modules]
                targets = subs + ([base] if len(subs) < len(node.names) else [])
            else:
                continue
            graph[name] |= {t for t in targets if t in modules and t != name}
    return graph


def _top_level_nodes(tree: ast.Module):
    """Statements that run when the module is imported (not those inside functions)."""
    todo = list(tree.body)
    while todo:
        node = todo.pop()
        yield node
        if isinstance(node, (ast.If, ast.Try, ast.ClassDef, ast.With)):
            todo += [n for n in ast.iter_child_nodes(node) if isinstance(n, ast.stmt)]


def _function_imports(tree: ast.Module):
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            for inner in ast.walk(node):
                if isinstance(inner, (ast.Import, ast.ImportFrom)):
                    yield inner


def _targets(node, name: str, path: Path, modules) -> tuple[list[str], list[str]]:
    """(package modules, third-party top-level packages) one import statement names."""
    if isinstance(node, ast.Import):
        names = [a.name for a in node.names]
        return ([n for n in names if n in modules],
                [n.split(".")[0] for n in names if n.split(".")[0] != "tasnet_sweep"])
    if node.level == 0:
        root = (node.module or "").split(".")[0]
        if root != "tasnet_sweep":
            return [], [root] if root != "__future__" else []
        base = node.module
    else:
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        parts = package.split(".")
        base = ".".join([*parts[:len(parts) - node.level + 1], *([node.module] if node.module
                                                                  else [])])
    subs = [f"{base}.{a.name}" for a in node.names if f"{base}.{a.name}" in modules]
    return subs + ([base] if base in modules else []), []


def third_party_closure() -> dict[str, set[str]]:
    """module -> the third-party packages importing it loads (module-level imports, its own and
    its parent packages', followed through the package; standard library left out)."""
    modules = _modules()
    direct: dict[str, tuple[set[str], set[str]]] = {}
    for name, path in modules.items():
        inner, outer = set(), set()
        for node in _top_level_nodes(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                found, third = _targets(node, name, path, modules)
                inner |= set(found)
                outer |= {t for t in third if t not in sys.stdlib_module_names}
        parents = name.split(".")
        inner |= {".".join(parents[:i]) for i in range(1, len(parents))} & set(modules)
        direct[name] = (inner - {name}, outer)
    closure = {}
    for name in modules:
        seen, todo, third = {name}, [name], set()
        while todo:
            inner, outer = direct[todo.pop()]
            third |= outer
            todo += [m for m in inner if m not in seen]
            seen |= inner
        closure[name] = third
    return closure


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    for root in graph:
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph[child]))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(sorted(component))
    return found


def test_the_graph_is_read_right():
    graph = import_graph()
    assert "tasnet_sweep.config" in graph["tasnet_sweep.checks"]
    assert "tasnet_sweep.compile" in graph["tasnet_sweep.checks"]
    assert "tasnet_sweep.app" in graph["tasnet_sweep.cli"]  # a function-level import counts
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_the_package_has_no_import_cycle():
    assert cycles(import_graph()) == []


def test_an_own_module_is_imported_in_a_function_only_at_a_third_party_boundary():
    """Moving such an import to the module top would load a library the module does not
    load now; any other function-level import of the package belongs at the top (but for the
    few entry points that stay lean on purpose)."""
    modules, closure = _modules(), third_party_closure()
    assert "torch" in closure["tasnet_sweep.model.units"]
    assert "torch" not in closure["tasnet_sweep.trial"] | closure["tasnet_sweep.cli"]
    movable = []
    for name, path in modules.items():
        if name in LEAN_ENTRY_POINTS:
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in _function_imports(tree):
            found, _ = _targets(node, name, path, modules)
            if found and set().union(*(closure[m] for m in found)) <= closure[name]:
                movable.append(f"{path.relative_to(REPO)}:{node.lineno}")
    assert movable == []


@pytest.mark.parametrize("module", ["tasnet_sweep.cli", "tasnet_sweep.checks"])
def test_the_config_error_path_imports_nothing_heavy(module):
    """``--help`` and config errors stay fast: no torch, onnx, mlflow, optuna or matplotlib
    on the way to the first error line."""
    import subprocess
    import sys

    heavy = ("torch", "onnx", "onnxruntime", "mlflow", "optuna", "matplotlib")
    code = (f"import sys, {module}; "
            f"print([m for m in {heavy!r} if m in sys.modules])")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          cwd=REPO, timeout=300)
    assert done.returncode == 0 and done.stdout.strip() == "[]", done.stdout + done.stderr


def test_every_console_script_names_a_command_of_the_package():
    import importlib

    import tomllib

    scripts = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["scripts"]
    commands = {name.removeprefix("tasnet-sweep-").replace("-", "_") for name in scripts} - \
        {"tasnet_sweep"}
    assert {"agreement", "fit_profile", "separate", "sync", "check_device"} <= commands
    for name, target in scripts.items():
        module, _, function = target.partition(":")
        assert callable(getattr(importlib.import_module(module), function)), name
