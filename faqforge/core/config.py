"""params.yaml and prompts.yaml, typed: one frozen model per section
(faqforge.core.sections), with its defaults and allowed values declared once.

The knobs live in params.yaml, the prompts and worked examples in prompts.yaml
beside it: each prompts.yaml section merges into the params.yaml section of
the same name, so a stage sees one section. `load_config` reads both and
checks every section a stage asks for before the stage does any work: a misspelt key is an error naming it, its
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
from faqforge.core.sections import SECTIONS

PROMPTS = "prompts.yaml"  # beside params.yaml


def read_yaml(path="params.yaml"):
    """params.yaml as plain data; a missing file or a YAML syntax error is an error naming
    the file (and line), before any work is done."""
    path = Path(path)
    if not path.exists():
        raise PipelineError(f"{path}: not found; run from the project root, where params.yaml and {PROMPTS} "
                            "live.")
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
    """The requested sections of params.yaml, with their prompts from prompts.yaml
    merged in, checked and typed: {name: section model}."""
    params = read_yaml(path)
    prompts_path = Path(path).with_name(PROMPTS)
    prompts = read_yaml(prompts_path) if prompts_path.exists() else {}
    missing = [s for s in sections if not isinstance(params.get(s), dict)]
    if missing:
        raise PipelineError(f"{path}: missing or empty section(s) {', '.join(missing)}; "
                            "restore them from the project's params.yaml in git.")
    return {name: parse_section(path, name, _merged(params[name], prompts.get(name) or {}, name, prompts_path),
                                prompts=(prompts_path, prompts.get(name) or {}))
            for name in sections}


def _merged(values, prompts, where, prompts_path):
    """A params.yaml section with its prompts.yaml section merged in, mapping by
    mapping; a key set in both files is an error."""
    out = dict(values)
    for key, value in prompts.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _merged(out[key], value, f"{where}.{key}", prompts_path)
        elif key in out:
            raise PipelineError(f"{prompts_path}: {where}.{key} is set in params.yaml too; keep it in one of "
                                "the two files.")
        else:
            out[key] = value
    return out


def parse_section(path, name, values, prompts=None):
    """One section's values as its model; every problem found is listed, each with
    its key and the file it is in (`prompts`: prompts.yaml's path and its part of the section)."""
    if name not in SECTIONS:
        raise PipelineError(f"{path}: unknown section '{name}'{_nearest(name, SECTIONS)}")
    model = SECTIONS[name]
    try:
        return model.model_validate(values)
    except ValidationError as e:
        problems = _problems(model, name, e.errors())
        prompts_path, prompt_values = prompts or (None, {})
        raise PipelineError("; ".join(f"{prompts_path if _holds(prompt_values, loc) else path}: {line}"
                                      for loc, line in problems)) from None


def _holds(values, loc):
    """Whether the nested mapping/list `values` has something at the key path `loc`."""
    for part in loc:
        if isinstance(values, dict) and part in values:
            values = values[part]
        elif isinstance(values, list) and part.isdigit() and int(part) < len(values):
            values = values[int(part)]
        else:
            return False
    return bool(loc)


# Parts of an error's location that name a type a value was tried as (a union's members), not a key.
TYPE_TAG = re.compile(r"^(int|float|str|bool|none|constrained-\w+|(list|dict|literal|function-\w+)\[.*\]|[A-Z]\w*)$")


def _problems(model, section, errors):
    """(key path, line) per key at fault: an unknown key with the nearest valid one, a
    missing key, or a bad value with what each accepted type says about it."""
    unknown, missing, bad = [], [], {}
    for error in errors:
        loc = [str(part) for part in error["loc"] if not TYPE_TAG.match(str(part))]
        key = ".".join([section, *loc])
        if error["type"] == "extra_forbidden":
            where = ".".join([section, *loc[:-1]])
            unknown.append((loc, f"unknown key {key}{_nearest(loc[-1], _fields_at(model, loc[:-1]), where)}"))
        elif error["type"] == "missing":
            missing.append((loc, f"{key} is missing (see the project's params.yaml and {PROMPTS} in git)"))
        else:
            bad.setdefault((key, repr(error.get("input"))), (loc, []))[1].append(error["msg"].lower())
    wrong_keys = [".".join([section, *loc]) for loc, _ in unknown]
    values = [(loc, f"{key}: {' or '.join(dict.fromkeys(msgs))} (got {got})") for (key, got), (loc, msgs) in bad.items()
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
