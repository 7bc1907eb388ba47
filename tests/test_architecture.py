"""Import structure of the project: no cycles, every module imports alone.

- Every module of tinybert_tf/, trainers/ and export/ imports (a fresh
  interpreter per package).
- The import graph of export/, built with `ast` from module-level AND
  function-level imports (a lazy import still closes a cycle), is acyclic.
- Command-line packages (export/, trainers/) stay small: at most 400 lines
  a module, and no function of theirs takes more than 8 parameters; no
  command line imports another (trainers/common.py and
  trainers/general_flags.py are shared helpers, not command lines).
"""

import ast
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
    trainers = import_graph("trainers")
    clis = {name for name in trainers if name not in (
        "trainers", "trainers.common", "trainers.general_flags")}
    assert not {name: sorted(set(targets) & clis)
                for name, targets in trainers.items()
                if set(targets) & clis}


@pytest.mark.parametrize("package", PACKAGES)
def test_every_module_imports(package):
    """Each module of the package is imported in a fresh interpreter (one
    per package; import cycles are the graph test's job)."""
    modules = sorted(_modules(package))
    code = "import importlib\nfor name in %r:\n    importlib.import_module(name)" % (
        modules,)
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env,
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]


@pytest.mark.parametrize("package", ["export", "trainers"])
def test_command_line_modules_are_small(package):
    for name, path in _modules(package).items():
        with open(path, encoding="utf-8") as f:
            lines = len(f.read().splitlines())
        assert lines <= MAX_LINES, f"{name}: {lines} lines"


@pytest.mark.parametrize("package", ["export", "trainers"])
def test_functions_take_few_parameters(package):
    too_many = []
    for name, path in _modules(package).items():
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
