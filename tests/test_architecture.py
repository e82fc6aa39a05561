"""The code's shape: subpackages that import only the rooms below them, no
import cycle, stage scripts that fit a screen and modules that fit a sitting."""

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "faqforge"
STAGE_LINES = 65
MODULE_LINES = 320


def module_name(path):
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports_of(path):
    """Every faqforge module a file imports, at any depth of the file (function-level imports too)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("faqforge"):
            found.add(node.module)
        elif isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.startswith("faqforge"))
    return found


def library_modules():
    return {module_name(p): p for p in PACKAGE.rglob("*.py")}


def test_every_module_sits_in_a_subpackage_that_says_what_it_may_import():
    for path in PACKAGE.glob("*.py"):
        assert path.name in ("__init__.py", "__main__.py"), f"{path.name}: put it in the subpackage of its role"
    for init in PACKAGE.glob("*/__init__.py"):
        doc = ast.get_docstring(ast.parse(init.read_text()))
        assert doc and "May import:" in doc, f"{init}: a docstring saying what it holds and what it may import"


def test_package_inits_hold_no_code():
    """Importing a subpackage runs nothing, so dvc.yaml need not list the __init__ files."""
    for init in PACKAGE.rglob("__init__.py"):
        body = ast.parse(init.read_text()).body
        code = [n for n in body[1:] if not (isinstance(n, ast.Assign) and n.targets[0].id == "__version__")]
        assert isinstance(body[0], ast.Expr) and not code, f"{init}: only a docstring"


def allowed_imports():
    allowed = {}
    for init in PACKAGE.glob("*/__init__.py"):
        doc = ast.get_docstring(ast.parse(init.read_text()))
        line = doc.split("May import:")[1]
        allowed[init.parent.name] = set(re.findall(r"faqforge\.(\w+)", line))
    return allowed


def test_each_subpackage_imports_only_what_its_docstring_allows():
    allowed = allowed_imports()
    for name, path in library_modules().items():
        parts = name.split(".")
        if len(parts) < 3:
            continue
        room = parts[1]
        for target in imports_of(path):
            other = target.split(".")[1]
            assert other == room or other in allowed[room], \
                f"{name} imports {target}; faqforge.{room} may import {sorted(allowed[room])}"


def find_cycle(graph):
    """A list of nodes that import each other in a circle, or None."""
    state = {}

    def visit(node, trail):
        if state.get(node) == "done":
            return None
        if state.get(node) == "open":
            return trail[trail.index(node):] + [node]
        state[node] = "open"
        for target in sorted(graph.get(node, ())):
            cycle = visit(target, trail + [node])
            if cycle:
                return cycle
        state[node] = "done"
        return None

    for node in sorted(graph):
        cycle = visit(node, [])
        if cycle:
            return cycle
    return None


def test_the_import_graph_has_no_cycle():
    modules = library_modules()
    graph = {name: {t for t in imports_of(path) if t in modules} for name, path in modules.items()}
    assert not find_cycle(graph), " -> ".join(find_cycle(graph))
    rooms = {}  # the subpackages themselves form no cycle either
    for name, targets in graph.items():
        if name.count(".") >= 2:
            room = name.split(".")[1]
            rooms.setdefault(room, set()).update(t.split(".")[1] for t in targets
                                                 if t.count(".") >= 2 and t.split(".")[1] != room)
    assert len(rooms) >= 8 and not find_cycle(rooms), find_cycle(rooms)


def test_the_cycle_finder_finds_one():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": set()}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None
def test_stage_scripts_fit_a_screen_and_modules_a_sitting():
    long_stages = {p.name: n for p in (ROOT / "stages").glob("*.py")
                   if (n := len(p.read_text().splitlines())) > STAGE_LINES}
    assert not long_stages, f"stage scripts over {STAGE_LINES} lines: {long_stages}; move the logic into faqforge/"
    long_modules = {name: n for name, p in library_modules().items()
                    if (n := len(p.read_text().splitlines())) > MODULE_LINES}
    assert not long_modules, f"modules over {MODULE_LINES} lines: {long_modules}; split them by what they do"
