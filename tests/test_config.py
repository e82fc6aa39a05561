import json

import pytest
import yaml
from pydantic import ValidationError

from faqforge.core.config import SECTIONS, load_config, read_yaml
from faqforge.core.io import PipelineError


def write_params(tmp_path, change, change_prompts=None):
    """Copies of the project's params.yaml and prompts.yaml with `change(params)` and
    `change_prompts(prompts)` applied."""
    for name, changer in (("params.yaml", change), ("prompts.yaml", change_prompts)):
        values = read_yaml(name)
        if changer:
            changer(values)
        (tmp_path / name).write_text(yaml.safe_dump(values, sort_keys=False, allow_unicode=True))
    return tmp_path / "params.yaml"


def both_files():
    """params.yaml with prompts.yaml merged in, section by section, mapping by mapping."""
    def merge(a, b):
        return {**a, **{k: merge(a[k], v) if isinstance(v, dict) and k in a else v for k, v in b.items()}}
    params, prompts = read_yaml("params.yaml"), read_yaml("prompts.yaml")
    assert set(prompts) <= set(params)
    return {name: merge(values, prompts.get(name, {})) for name, values in params.items()}


def test_params_yaml_prompts_yaml_and_the_models_hold_the_same_keys_and_values():
    raw = both_files()
    assert set(raw) == set(SECTIONS)
    loaded = load_config("params.yaml", list(raw))
    for name in raw:     # every key known, nothing added or re-typed (120 stays 120, 1.0 stays 1.0)
        assert json.dumps(loaded[name].model_dump(), sort_keys=True) == json.dumps(raw[name], sort_keys=True), name


def test_prompts_and_worked_examples_live_in_prompts_yaml_only():
    params = json.dumps(read_yaml("params.yaml"))
    assert "system_prompt" not in params and "user_prompt" not in params and "examples" not in params
    prompts = read_yaml("prompts.yaml")
    assert {"generate", "curate", "augment", "split", "evaluate"} == set(prompts)


def test_a_key_in_both_files_or_misspelt_in_prompts_yaml_is_named_with_its_file(tmp_path):
    path = write_params(tmp_path, lambda p: p["split"].update(system_prompt="Be brief."))
    with pytest.raises(PipelineError, match=r"prompts.yaml: split.system_prompt is set in params.yaml too"):
        load_config(path, ["split"])
    path = write_params(tmp_path, None, lambda p: p["curate"]["judge"].update(user_promt="{text}"))
    with pytest.raises(PipelineError, match=r"prompts.yaml: unknown key curate.judge.user_promt; did you mean "
                                            r"curate.judge.user_prompt\?"):
        load_config(path, ["curate"])


def test_the_declared_defaults_are_params_yamls_values():
    raw = both_files()
    for name, model in SECTIONS.items():
        for key, field in model.model_fields.items():
            if field.is_required():       # prompts and worked examples: content, no default
                continue
            default = field.get_default(call_default_factory=True)
            default = default.model_dump() if hasattr(default, "model_dump") else default
            assert json.dumps(default) == json.dumps(raw[name][key]), f"{name}.{key}"


def test_a_left_out_key_takes_its_default(tmp_path):
    path = write_params(tmp_path, lambda p: (p["dedup"].pop("threshold"), p["split"]["raft"].pop("order")))
    config = load_config(path, ["dedup", "split"])
    assert config["dedup"].threshold == 90 and config["split"].raft.order == "retrieved"


def test_a_misspelt_key_is_named_with_the_nearest_valid_one(tmp_path):
    path = write_params(tmp_path, lambda p: p["dedup"].update(treshold=91))
    with pytest.raises(PipelineError, match=r"params.yaml: unknown key dedup\.treshold; did you mean "
                                            r"dedup\.threshold\?"):
        load_config(path, ["dedup"])


def test_nested_keys_and_list_items_are_named_in_full(tmp_path):
    def change(p):
        p["split"]["mix"] = {"manual": {"weight": 2, "max_pair": 3}}

    def change_prompts(p):
        p["curate"]["judge"]["examples"][1]["answr"] = p["curate"]["judge"]["examples"][1].pop("answer")
    path = write_params(tmp_path, change, change_prompts)
    with pytest.raises(PipelineError, match=r"unknown key split\.mix\.manual\.max_pair; did you mean "
                                            r"split\.mix\.manual\.max_pairs\?"):
        load_config(path, ["split"])
    with pytest.raises(PipelineError) as e:
        load_config(path, ["curate"])
    assert "prompts.yaml: unknown key curate.judge.examples.1.answr; did you mean curate.judge.examples.1.answer?" \
        in str(e.value)
    assert "curate.judge.examples.1.answer is missing" in str(e.value)


def test_a_value_outside_its_choices_or_type_is_named(tmp_path):
    def change(p):
        p["split"]["raft"]["order"] = "random"
        p["teacher"]["temperature"] = "hot"
        p["teacher"]["concurrency"] = 0
    path = write_params(tmp_path, change)
    with pytest.raises(PipelineError, match=r"split\.raft\.order: input should be 'retrieved' or 'shuffled' "
                                            r"\(got 'random'\)"):
        load_config(path, ["split"])
    with pytest.raises(PipelineError) as e:
        load_config(path, ["teacher"])
    assert "teacher.temperature: input should be a valid integer" in str(e.value) and "(got 'hot')" in str(e.value)
    assert "teacher.concurrency: input should be greater than or equal to 1 or input should be 'auto' (got 0)" in str(e.value)


def test_a_threshold_of_0_is_refused_at_load(tmp_path):
    """A similarity threshold is in (0, 100]: 0 would call every pair a duplicate. The
    schema is the only check; the library takes the section as given."""
    def change(p):
        p["dedup"]["threshold"] = 0
        p["decontaminate"]["question_threshold"] = 0
    path = write_params(tmp_path, change)
    for section, key in (("dedup", "threshold"), ("decontaminate", "question_threshold")):
        with pytest.raises(PipelineError, match=rf"{section}\.{key}: input should be greater than 0 \(got 0\)"):
            load_config(path, [section])


def test_sections_are_frozen_and_typed():
    config = load_config("params.yaml", ["split", "teacher"])
    assert config["split"].raft.passages == 2 and config["teacher"].backend == "local"
    with pytest.raises(ValidationError, match="frozen"):
        config["split"].raft.passages = 3


def test_malformed_params_names_line(tmp_path):
    path = tmp_path / "params.yaml"
    path.write_text("teacher:\n  model: x\n bad: [\n")
    with pytest.raises(PipelineError, match=r"params.yaml: malformed YAML at line \d+"):
        load_config(path, ["teacher"])


def test_missing_params_section_is_named(tmp_path):
    path = tmp_path / "params.yaml"
    path.write_text("teacher:\n  model: x\n")
    with pytest.raises(PipelineError, match="missing or empty section.*student"):
        load_config(path, ["teacher", "student"])


def test_a_stage_stops_on_a_misspelt_key_before_any_work(tmp_path, monkeypatch):
    import subprocess
    import sys
    from pathlib import Path
    root = Path.cwd()
    write_params(tmp_path, lambda p: p["dedup"].update(treshold=91))
    out = subprocess.run([sys.executable, str(root / "stages/dedup.py")], cwd=tmp_path, capture_output=True, text=True,
                         env={"PYTHONPATH": str(root), "PATH": "/usr/bin:/bin"})
    assert out.returncode == 1
    assert "unknown key dedup.treshold; did you mean dedup.threshold?" in out.stderr
    assert not (tmp_path / "data").exists()          # nothing read, nothing written


def test_the_librarys_tables_cover_exactly_the_declared_choices():
    """Allowed values are declared once, in faqforge.core.sections; what the library
    keeps per value (a ranking function per dedup criterion) matches them."""
    from faqforge.core.sections import Dedup, choices
    from faqforge.evaluation.scores import ARM_NAMES, ARMS
    from faqforge.refinement.dedup import PREFER
    from faqforge.refinement.fuzzy import EXHAUSTIVE_UP_TO
    assert set(PREFER) | {"earliest"} == set(choices(Dedup, "prefer"))
    assert set(EXHAUSTIVE_UP_TO) == set(choices(Dedup, "scorer"))
    assert ARMS == ("base_closed", "tuned_closed", "base_rag", "tuned_rag", "evidence", "top_passage", "best_sentence",
                    "oracle_sentence")
    assert set(ARM_NAMES) == set(ARMS)
