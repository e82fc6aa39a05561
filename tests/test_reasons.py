"""Drop reasons are codes from one table (faqforge.core.reasons), written apart from
their details; nothing reads the details back to count them."""

import ast
from pathlib import Path

import pytest

from faqforge.core.reasons import REASONS, meaning
from faqforge.core.records import dropped

ROOT = Path(__file__).resolve().parents[1]
SOURCES = sorted([*(ROOT / "faqforge").rglob("*.py"), *(ROOT / "stages").glob("*.py")])


def test_a_drop_carries_its_code_and_its_details_apart():
    record = dropped({"id": "p1"}, "curate", "low grounding", "grounding 0.2 < min_grounding 0.5")
    assert (record["reason"], record["why"], record["dropped_by"]) == ("low grounding", "grounding 0.2 < min_grounding 0.5",
                                                                      "curate")
    assert dropped({"id": "p2"}, "dedup", "exact duplicate")["why"] == "exact duplicate"


def test_an_unregistered_code_is_refused_at_the_first_drop():
    with pytest.raises(ValueError, match="unregistered drop reason 'too odd'"):
        dropped({"id": "p1"}, "curate", "too odd", "details")
    assert meaning("near duplicate").startswith("scores dedup.threshold")


def literal_codes():
    """(file, line, code) of every string literal given to dropped() as its reason, or
    as the reason of a drop spelt out as a dict."""
    found = []
    for path in SOURCES:
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call) and ast.unparse(node.func) == "dropped" and len(node.args) >= 3:
                code = node.args[2]
            elif isinstance(node, ast.Dict):
                code = next((v for k, v in zip(node.keys, node.values)
                             if isinstance(k, ast.Constant) and k.value == "reason"), None)
            else:
                continue
            if isinstance(code, ast.Constant) and isinstance(code.value, str):
                found.append((path.relative_to(ROOT), node.lineno, code.value))
    return found


def test_every_code_the_code_writes_is_in_the_table():
    codes = literal_codes()
    assert len(codes) >= 15
    unknown = [c for c in codes if c[2] not in REASONS]
    assert unknown == []


def test_nothing_parses_the_details_of_a_drop():
    """`why` is for people: no library code splits it, searches it or reads a prefix of it."""
    parsing = []
    for path in SOURCES:
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) \
                    and node.func.attr in ("split", "startswith", "partition", "index", "find"):
                target = ast.unparse(node.func.value)
                if target.endswith(("['why']", '["why"]', ".why")) or target == "why":
                    parsing.append(f"{path.relative_to(ROOT)}:{node.lineno}: {ast.unparse(node)}")
    assert parsing == []
