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


def test_every_room_docstring_names_its_modules():
    for init in PACKAGE.glob("*/__init__.py"):
        doc = ast.get_docstring(ast.parse(init.read_text()))
        missing = [p.stem for p in init.parent.glob("*.py")
                   if p.stem != "__init__" and not re.search(rf"\b{p.stem}\b", doc)]
        assert not missing, f"{init}: the docstring does not say what {missing} hold"


def python_files():
    return [p for p in (*PACKAGE.rglob("*.py"), *(ROOT / "stages").glob("*.py"))]


def test_only_the_models_room_talks_to_a_model():
    """Every completion comes from faqforge.models: nothing else imports openai, calls a
    model's `generate` or reaches for generate_chat."""
    models = PACKAGE / "models"
    for path in python_files():
        if models in path.parents:
            continue
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                assert not any(a.name.split(".")[0] == "openai" for a in node.names), f"{path}:{node.lineno}"
            elif isinstance(node, ast.ImportFrom):
                assert (node.module or "").split(".")[0] != "openai", f"{path}:{node.lineno} imports openai"
                assert "generate_chat" not in [a.name for a in node.names], f"{path}:{node.lineno}"
            elif isinstance(node, ast.Attribute):
                assert node.attr != "generate", f"{path}:{node.lineno}: .generate outside faqforge.models"


SAMPLING_FIELDS = {"temperature", "top_p", "max_new_tokens", "do_sample", "stop_strings"}


def test_one_type_holds_the_sampling_settings():
    """faqforge.models.sampling defines Sampling and every translation of it (OpenAI request
    fields, transformers' generate, vLLM); no other module spells the settings out as a dict or
    as keyword arguments of anything but Sampling itself, and every module that builds
    requests for a model imports it."""
    home = PACKAGE / "models" / "sampling.py"
    defined = [p for p in python_files() if re.search(r"^class Sampling\b", p.read_text(), re.M)]
    assert defined == [home]
    for path in python_files():
        if path == home:
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Dict):
                keys = {k.value for k in node.keys if isinstance(k, ast.Constant)}
                assert not keys & SAMPLING_FIELDS, f"{path}:{node.lineno}: sampling settings as a dict"
            elif isinstance(node, ast.Call) and not ast.unparse(node.func).startswith("Sampling"):
                keywords = {k.arg for k in node.keywords} & SAMPLING_FIELDS
                assert not keywords or ast.unparse(node.func).endswith((".chat", "replace")), \
                    f"{path}:{node.lineno}: {ast.unparse(node.func)} given {keywords}; pass a Sampling"
    builders = ["faqforge/teacher/client.py", "faqforge/evaluation/answers.py", "faqforge/answering/chat.py",
                "faqforge/answering/api.py", "faqforge/review/app.py", "faqforge/models/decoding.py",
                "faqforge/teacher/ray_engine.py"]
    for name in builders:
        assert "faqforge.models.sampling" in imports_of(ROOT / name), f"{name} builds requests without Sampling"


def test_one_function_tells_an_adapter_from_a_full_checkpoint():
    deciders = [p for p in python_files() if "adapter_config.json\").exists()" in p.read_text()
                or "adapter_config.json').exists()" in p.read_text()]
    assert deciders == [PACKAGE / "models" / "checkpoints.py"]


def section_arguments():
    """Names the library gives a params section (or a part of one) when it takes one; `p`,
    `judge` and `teacher` also name pairs, metrics and the client, so they are left out."""
    from faqforge.core.sections import SECTIONS
    parts = {"rules", "rule", "served", "raft", "pii", "bm25", "dense", "transport"}
    return {"params", *SECTIONS, *parts} - {"split", "review", "teacher"}


def raw_params_uses(source):
    """(line, text) of every `name["key"]` or `name.get("key")` on a function argument
    that holds a params section: a raw params dict read by key."""
    found, names = [], section_arguments()
    for function in ast.walk(ast.parse(source)):
        if not isinstance(function, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
            continue
        arguments = {a.arg for a in function.args.args + function.args.kwonlyargs
                     if a.arg in names or a.arg.endswith("_params")}
        for node in ast.walk(function):
            if isinstance(node, ast.Subscript) and isinstance(node.slice, ast.Constant) \
                    and isinstance(node.slice.value, str):
                target = node.value
            elif isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "get" \
                    and node.args and isinstance(node.args[0], ast.Constant):
                target = node.func.value
            else:
                continue
            while isinstance(target, ast.Attribute):       # p.judge["x"] reads a part of the section p
                target = target.value
            if isinstance(target, ast.Name) and target.id in arguments:
                found.append((node.lineno, ast.unparse(node)))
    return found


def test_no_library_function_takes_a_raw_params_dict():
    """Stages read params.yaml once (faqforge.core.config.load_config: checked, with its
    defaults, every error naming the file and key) and hand typed sections down; no
    library function re-reads a section by key, re-validates it or keeps a copy of its
    defaults. The helpers that did (load_params, checked) are gone."""
    import faqforge.core.config as config
    assert not hasattr(config, "load_params") and not hasattr(config, "checked")
    for path in [*python_files(), *sorted((ROOT / "stages").glob("*.py"))]:
        text = path.read_text()
        assert "load_params" not in text and "checked(\"" not in text, path
        assert raw_params_uses(text) == [], f"{path}: a section read as a dict"
    assert raw_params_uses("def f(params):\n    return params['max_tokens']\n") == [(2, "params['max_tokens']")]
    assert raw_params_uses("def f(params):\n    return params.judge.get('arms')\n") == [(2, "params.judge.get('arms')")]
