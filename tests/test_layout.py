"""The package's shape: no module over 400 lines, no import cycle between modules, and no module
outside the model registry that compares a model's name (the verbs ask a model's capabilities).

Imports and comparisons are read from the source (module level and inside functions alike), for both twins."""
import ast
from pathlib import Path

import pytest

from tagger_torch.models import MODELS

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = {"tagger_torch": ROOT / "tagger_torch", "tagger_reference": ROOT / "reference"}
MAX_LINES = 400
# the modules that may name a model type: the registry and the configs it picks
MODEL_SEAM = {"tagger_torch.models", "tagger_torch.config"}


def modules():
    """{dotted module name: path} for every .py file of both packages."""
    found = {}
    for package, folder in PACKAGES.items():
        for path in folder.rglob("*.py"):
            parts = path.relative_to(folder).with_suffix("").parts
            if parts[-1] == "__init__":
                parts = parts[:-1]
            found[".".join((package,) + parts)] = path
    return found


def imported_modules(name, path, known):
    """The project modules that module `name` imports (relative imports resolved)."""
    tree = ast.parse(path.read_text(), str(path))
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    targets = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            targets.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(anchor + ([base] if base else []))
            targets.add(base)
            # `from package import module` imports the submodule
            targets.update(f"{base}.{alias.name}" for alias in node.names)
    return {t for t in targets if t in known and t != name}


def import_graph():
    known = modules()
    return {name: imported_modules(name, path, known) for name, path in known.items()}


def find_cycle(graph):
    """One import cycle as a list of module names, or None (depth-first search)."""
    state, stack = {}, []

    def visit(node):
        state[node] = "open"
        stack.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == "open":
                return stack[stack.index(nxt):] + [nxt]
            if nxt not in state:
                cycle = visit(nxt)
                if cycle:
                    return cycle
        state[node] = "done"
        stack.pop()
        return None

    for node in sorted(graph):
        if node not in state:
            cycle = visit(node)
            if cycle:
                return cycle
    return None


@pytest.mark.parametrize("name", sorted(modules()))
def test_module_is_at_most_400_lines(name):
    lines = len(modules()[name].read_text().splitlines())
    assert lines <= MAX_LINES, f"{name}: {lines} lines > {MAX_LINES}"


def test_no_import_cycle():
    cycle = find_cycle(import_graph())
    assert cycle is None, "import cycle: " + " -> ".join(cycle)


def test_the_cycle_finder_finds_a_cycle():
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": set()}
    assert find_cycle(graph) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None


def test_setup_ships_every_package():
    """`pip install .` installs what setup.py lists: every folder of tagger_torch with an __init__.py."""
    tree = ast.parse((ROOT / "setup.py").read_text())
    listed = next(node.value for node in ast.walk(tree) if isinstance(node, ast.keyword) and node.arg == "packages")
    shipped = set(ast.literal_eval(listed))
    folders = {".".join(("tagger_torch",) + init.parent.relative_to(PACKAGES["tagger_torch"]).parts)
               for init in PACKAGES["tagger_torch"].rglob("__init__.py")}
    assert folders <= shipped, f"setup.py's packages lack {sorted(folders - shipped)}"


def model_name_comparisons(path):
    """The lines of `path` that compare something with a registered model's name (e.g.
    `config.model != "tagger"`, `model in ("fc-mlp", "convnet")`)."""
    def names(node):
        if isinstance(node, ast.Constant):
            return isinstance(node.value, str) and node.value in MODELS
        return isinstance(node, (ast.Tuple, ast.List, ast.Set)) and any(names(e) for e in node.elts)

    tree = ast.parse(path.read_text(), str(path))
    return [node.lineno for node in ast.walk(tree)
            if isinstance(node, ast.Compare) and any(names(n) for n in [node.left, *node.comparators])]


def test_no_module_outside_the_registry_compares_a_model_name():
    leaks = {name: model_name_comparisons(path) for name, path in modules().items() if name not in MODEL_SEAM}
    leaks = {name: lines for name, lines in leaks.items() if lines}
    assert not leaks, f"model names compared (ask config.require / the model instead): {leaks}"


def test_the_name_check_finds_comparisons(tmp_path):
    path = tmp_path / "m.py"
    path.write_text('if config.model != "tagger":\n    pass\nok = kind == "binary"\n'
                    'clash = model in ("x", "fc-mlp")\n')
    assert model_name_comparisons(path) == [1, 4]
