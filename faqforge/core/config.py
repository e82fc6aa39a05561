"""params.yaml, typed: one frozen model per section, with its defaults and
allowed values declared here once.

`load_config` reads params.yaml and checks every section a stage asks for
before the stage does any work: a misspelt key is an error naming it, its
section and the nearest valid key; a value outside its choices or of the wrong
type is an error naming the key and what it accepts. Keys left out take the
defaults of faqforge.core.sections, which are params.yaml's own values (a test holds the two
together). What each knob does is documented next to it in params.yaml.
"""

import difflib
import re
from pathlib import Path

import yaml
from pydantic import BaseModel, ValidationError

from faqforge.core.io import PipelineError
from faqforge.core.sections import PARTS, SECTIONS


def read_yaml(path="params.yaml"):
    """params.yaml as plain data; a missing file or a YAML syntax error is an error naming
    the file (and line), before any work is done."""
    path = Path(path)
    if not path.exists():
        raise PipelineError(f"{path}: not found; run from the project root, where params.yaml lives.")
    try:
        params = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as e:
        where = ""
        mark = getattr(e, "problem_mark", None)
        if mark is not None:
            where = f" at line {mark.line + 1}, column {mark.column + 1}"
        problem = getattr(e, "problem", None) or str(e).splitlines()[0]
        raise PipelineError(f"{path}: malformed YAML{where}: {problem}. Fix the indentation or quoting "
                            "there (`git diff params.yaml` shows what changed).") from None
    if not isinstance(params, dict):
        raise PipelineError(f"{path}: expected a mapping of sections (teacher:, student:, ingest:, ...), "
                            f"got {type(params).__name__}.")
    return params


def load_config(path="params.yaml", sections=()):
    """The requested sections of params.yaml, checked and typed: {name: section model}."""
    params = read_yaml(path)
    missing = [s for s in sections if not isinstance(params.get(s), dict)]
    if missing:
        raise PipelineError(f"{path}: missing or empty section(s) {', '.join(missing)}; "
                            "restore them from the project's params.yaml in git.")
    return {name: parse_section(path, name, params[name]) for name in sections}


def parse_section(path, name, values, model=None):
    """One section's (or with `model`, a part's, named like hygiene.pii) values as its
    model; every problem found is listed, each with its key."""
    if model is None:
        if name not in SECTIONS:
            raise PipelineError(f"{path}: unknown section '{name}'{_nearest(name, SECTIONS)}")
        model = SECTIONS[name]
    try:
        return model.model_validate(values)
    except ValidationError as e:
        raise PipelineError(f"{path}: " + "; ".join(_problems(model, name, e.errors()))) from None


def checked(name, values):
    """A section or part of one (`teacher`, `hygiene.pii`) as plain data, checked and with its
    defaults: what the library's classes take, however they are called."""
    model = SECTIONS.get(name) or PARTS[name]
    return parse_section("params.yaml", name, values, model).model_dump()


# Parts of an error's location that name a type a value was tried as (a union's members), not a key.
TYPE_TAG = re.compile(r"^(int|float|str|bool|none|(list|dict|literal|function-\w+)\[.*\]|[A-Z]\w*)$")


def _problems(model, section, errors):
    """One line per key at fault: an unknown key with the nearest valid one, a missing
    key, or a bad value with what each accepted type says about it."""
    unknown, missing, bad = [], [], {}
    for error in errors:
        loc = [str(part) for part in error["loc"] if not TYPE_TAG.match(str(part))]
        key = ".".join([section, *loc])
        if error["type"] == "extra_forbidden":
            where = ".".join([section, *loc[:-1]])
            unknown.append(f"unknown key {key}{_nearest(loc[-1], _fields_at(model, loc[:-1]), where)}")
        elif error["type"] == "missing":
            missing.append(f"{key} is missing (see the project's params.yaml in git)")
        else:
            bad.setdefault((key, repr(error.get("input"))), []).append(error["msg"].lower())
    wrong_keys = [line.split()[2].rstrip(";") for line in unknown]
    values = [f"{key}: {' or '.join(dict.fromkeys(msgs))} (got {got})" for (key, got), msgs in bad.items()
              if not any(k.startswith(key + ".") for k in wrong_keys)]  # a mapping with a wrong key: say that
    return unknown + missing + values


def _fields_at(model, loc):
    """The valid keys of the (nested) model at `loc`, for suggestions; parts that are not
    fields are a list's index or a mapping's key, and are stepped over."""
    for part in loc:
        field = model.model_fields.get(part)
        if field is not None:
            model = _model_in(field.annotation)
            if model is None:
                return []
    return list(model.model_fields)


def _model_in(annotation):
    """The section model inside an annotation such as `Pii`, `list[CurateExample]` or `Number | SourceMix`."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in getattr(annotation, "__args__", ()):
        found = _model_in(arg)
        if found is not None:
            return found
    return None


def _nearest(key, valid, prefix=""):
    """'; did you mean <prefix>.<the closest valid key>?', or '' when none is close."""
    close = difflib.get_close_matches(key, list(valid), n=1, cutoff=0.6)
    if not close:
        return ""
    return f"; did you mean {prefix + '.' if prefix else ''}{close[0]}?"


def load_params(path="params.yaml", sections=()):
    """The requested sections of params.yaml, checked as load_config checks them, as
    plain data (nested dicts and lists) with every default filled in."""
    return {name: section.model_dump() for name, section in load_config(path, sections).items()}
