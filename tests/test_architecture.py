"""Import structure of the project: no cycles, every module imports alone.

- Every module of tinybert_tf/, trainers/ and export/ is imported in a fresh
  interpreter (an import cycle fails only for some entry points, so each
  module is its own entry point).
- The import graph of export/, built with `ast` from module-level AND
  function-level imports (a lazy import still closes a cycle), is acyclic.
- export/ modules stay small: at most 400 lines, at most 8 parameters per
  function.
"""

import ast
import concurrent.futures
import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PACKAGES = ("tinybert_tf", "trainers", "export")
MAX_LINES = 400
MAX_PARAMETERS = 8


def _modules(package):
    """Dotted name -> file path of every module of `package`."""
    found = {}
    for folder, _, files in os.walk(os.path.join(ROOT, package)):
        for name in sorted(files):
            if not name.endswith(".py"):
                continue
            path = os.path.join(folder, name)
            parts = os.path.relpath(path, ROOT)[:-3].split(os.sep)
            if parts[-1] == "__init__":
                parts = parts[:-1]
            found[".".join(parts)] = path
    return found


def _is_package(path):
    return os.path.basename(path) == "__init__.py"


def _imported(module, path, known):
    """Modules among `known` that `module` imports anywhere in its file."""
    with open(path, encoding="utf-8") as f:
        tree = ast.parse(f.read(), path)
    package = module if _is_package(path) else module.rpartition(".")[0]
    targets = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")
                anchor = anchor[:len(anchor) - node.level + 1]
                base = ".".join(anchor + ([base] if base else []))
            # `from package import name`: the module package.name, if there
            # is one, else an attribute of the package.
            names = [f"{base}.{alias.name}" if f"{base}.{alias.name}" in known
                     else base for alias in node.names]
        else:
            continue
        for name in names:
            # The module itself, not the parent packages Python imports on
            # the way (a package may import its own modules).
            parts = name.split(".")
            prefixes = [".".join(parts[:i]) for i in range(len(parts), 0, -1)]
            targets.update(next(([p] for p in prefixes if p in known), []))
    return sorted(targets - {module})


def import_graph(package):
    modules = _modules(package)
    return {name: _imported(name, path, modules)
            for name, path in modules.items()}


def find_cycle(graph):
    """A list of modules forming a cycle (first repeated at the end), or
    None."""
    state, stack = {}, []

    def visit(node):
        state[node] = "open"
        stack.append(node)
        for target in graph.get(node, ()):
            if state.get(target) == "open":
                return stack[stack.index(target):] + [target]
            if target not in state:
                cycle = visit(target)
                if cycle:
                    return cycle
        stack.pop()
        state[node] = "done"
        return None

    for node in sorted(graph):
        if node not in state:
            cycle = visit(node)
            if cycle:
                return cycle
    return None


def test_find_cycle_finds_a_cycle():
    assert find_cycle({"a": ["b"], "b": ["c"], "c": ["a"]}) == [
        "a", "b", "c", "a"]
    assert find_cycle({"a": ["b", "c"], "b": ["c"], "c": []}) is None


def test_import_graph_sees_lazy_and_package_imports():
    graph = import_graph("export")
    # top-level `from export.convert import ...`
    assert "export.convert" in graph["export.classifier"]
    # `from export import metadata` (a module named in the import list)
    assert "export.metadata" in graph["export.device_tokenizer"]
    # an import inside a function: trim_classifier's `from export import
    # quantize`
    assert "export.quantize" in graph["export.vocab_trim"]


@pytest.mark.parametrize("package", PACKAGES)
def test_import_graph_is_acyclic(package):
    cycle = find_cycle(import_graph(package))
    assert cycle is None, " -> ".join(cycle)


def test_device_tokenizer_imports_only_signature_and_metadata():
    assert set(import_graph("export")["export.device_tokenizer"]) <= {
        "export", "export.signature", "export.metadata"}


def test_cli_module_imports_no_other_module():
    graph = import_graph("export")
    assert not [name for name, targets in graph.items()
                if "export.tflite" in targets]


def _import_alone(module):
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    return module, subprocess.run(
        [sys.executable, "-c", f"import {module}"], cwd=ROOT, env=env,
        capture_output=True, text=True, timeout=300)


def test_every_module_imports_in_a_fresh_interpreter():
    modules = [name for package in PACKAGES for name in _modules(package)]
    workers = max(2, min(4, os.cpu_count() or 2))
    with concurrent.futures.ThreadPoolExecutor(workers) as pool:
        results = list(pool.map(_import_alone, modules))
    failed = {module: result.stderr.strip().splitlines()[-1:]
              for module, result in results if result.returncode}
    assert not failed, failed


def test_export_modules_are_small():
    for name, path in _modules("export").items():
        with open(path, encoding="utf-8") as f:
            lines = len(f.read().splitlines())
        assert lines <= MAX_LINES, f"{name}: {lines} lines"


def test_export_functions_take_few_parameters():
    too_many = []
    for name, path in _modules("export").items():
        with open(path, encoding="utf-8") as f:
            tree = ast.parse(f.read(), path)
        for node in ast.walk(tree):
            if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                continue
            args = node.args
            count = len(args.posonlyargs + args.args + args.kwonlyargs)
            if args.args and args.args[0].arg in ("self", "cls"):
                count -= 1
            if count > MAX_PARAMETERS:
                too_many.append(f"{name}.{node.name}: {count}")
    assert not too_many
