"""The project's own params.yaml and prompts.yaml as typed sections, with a test's
changes: what library functions take, built the way a stage builds them.

    section("curate", rules={"min_question_chars": 5})   # nested keys merge
"""

from functools import cache
from pathlib import Path

from faqforge.core.config import load_config, parse_section
from faqforge.core.sections import SECTIONS

ROOT = Path(__file__).resolve().parents[2]


@cache
def project_section(name):
    return load_config(ROOT / "params.yaml", [name])[name]


def merged(values, changes):
    out = dict(values)
    for key, value in changes.items():
        out[key] = merged(out[key], value) if isinstance(value, dict) and isinstance(out.get(key), dict) else value
    return out


def section(name, **changes):
    """The project's `name` section with `changes` merged in, checked as params.yaml is."""
    assert name in SECTIONS, name
    return parse_section("test changes", name, merged(project_section(name).model_dump(), changes))


def changed(values, **changes):
    """A section (or a part of one) with `changes` merged in, checked again."""
    return type(values).model_validate(merged(values.model_dump(), changes))


def teacher_at(server, **changes):
    """A teacher section asking `server` (tests.support.openai_server) with the test's key
    variable, greedy, 64 tokens, 4 in flight, 2 quick retries; `changes` on top."""
    from faqforge.core.sections import Teacher
    return Teacher(**{"backend": "openai", "model": "test-teacher", "base_url": server.base_url,
                      "api_key_env": "FAQFORGE_TEST_KEY", "temperature": 0.0, "max_tokens": 64, "concurrency": 4,
                      "timeout": 10, "max_retries": 2, "backoff_seconds": 0.05, **changes})
