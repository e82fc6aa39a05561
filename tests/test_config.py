import json

import pytest
import yaml
from pydantic import ValidationError

from faqforge.core.config import SECTIONS, load_config, load_params, read_yaml
from faqforge.core.io import PipelineError


def write_params(tmp_path, change):
    """A copy of the project's params.yaml with `change(params)` applied."""
    params = read_yaml("params.yaml")
    change(params)
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(params, sort_keys=False, allow_unicode=True))
    return path


def test_params_yaml_and_the_models_hold_the_same_keys_and_values():
    raw = read_yaml("params.yaml")
    assert set(raw) == set(SECTIONS)
    loaded = load_params("params.yaml", list(raw))
    for name in raw:     # every key known, nothing added or re-typed (120 stays 120, 1.0 stays 1.0)
        assert json.dumps(loaded[name], sort_keys=True) == json.dumps(raw[name], sort_keys=True), name


def test_the_declared_defaults_are_params_yamls_values():
    raw = read_yaml("params.yaml")
    for name, model in SECTIONS.items():
        for key, field in model.model_fields.items():
            if field.is_required():       # prompts and worked examples: content, no default
                continue
            default = field.get_default(call_default_factory=True)
            default = default.model_dump() if hasattr(default, "model_dump") else default
            assert json.dumps(default) == json.dumps(raw[name][key]), f"{name}.{key}"


def test_a_left_out_key_takes_its_default(tmp_path):
    path = write_params(tmp_path, lambda p: (p["dedup"].pop("threshold"), p["split"]["raft"].pop("order")))
    params = load_params(path, ["dedup", "split"])
    assert params["dedup"]["threshold"] == 90 and params["split"]["raft"]["order"] == "retrieved"


def test_a_misspelt_key_is_named_with_the_nearest_valid_one(tmp_path):
    path = write_params(tmp_path, lambda p: p["dedup"].update(treshold=91))
    with pytest.raises(PipelineError, match=r"params.yaml: unknown key dedup\.treshold; did you mean "
                                            r"dedup\.threshold\?"):
        load_params(path, ["dedup"])


def test_nested_keys_and_list_items_are_named_in_full(tmp_path):
    def change(p):
        p["split"]["mix"] = {"manual": {"weight": 2, "max_pair": 3}}
        p["curate"]["judge"]["examples"][1]["answr"] = p["curate"]["judge"]["examples"][1].pop("answer")
    path = write_params(tmp_path, change)
    with pytest.raises(PipelineError, match=r"unknown key split\.mix\.manual\.max_pair; did you mean "
                                            r"split\.mix\.manual\.max_pairs\?"):
        load_params(path, ["split"])
    with pytest.raises(PipelineError) as e:
        load_params(path, ["curate"])
    assert "unknown key curate.judge.examples.1.answr; did you mean curate.judge.examples.1.answer?" in str(e.value)
    assert "curate.judge.examples.1.answer is missing" in str(e.value)


def test_a_value_outside_its_choices_or_type_is_named(tmp_path):
    def change(p):
        p["split"]["raft"]["order"] = "random"
        p["teacher"]["temperature"] = "hot"
        p["teacher"]["concurrency"] = 0
    path = write_params(tmp_path, change)
    with pytest.raises(PipelineError, match=r"split\.raft\.order: input should be 'retrieved' or 'shuffled' "
                                            r"\(got 'random'\)"):
        load_params(path, ["split"])
    with pytest.raises(PipelineError) as e:
        load_params(path, ["teacher"])
    assert "teacher.temperature: input should be a valid integer" in str(e.value) and "(got 'hot')" in str(e.value)
    assert "teacher.concurrency: input should be greater than or equal to 1 (got 0)" in str(e.value)


def test_sections_are_frozen_and_typed():
    config = load_config("params.yaml", ["split", "teacher"])
    assert config["split"].raft.passages == 2 and config["teacher"].backend == "local"
    with pytest.raises(ValidationError, match="frozen"):
        config["split"].raft.passages = 3


def test_malformed_params_names_line(tmp_path):
    path = tmp_path / "params.yaml"
    path.write_text("teacher:\n  model: x\n bad: [\n")
    with pytest.raises(PipelineError, match=r"params.yaml: malformed YAML at line \d+"):
        load_params(path, ["teacher"])


def test_missing_params_section_is_named(tmp_path):
    path = tmp_path / "params.yaml"
    path.write_text("teacher:\n  model: x\n")
    with pytest.raises(PipelineError, match="missing or empty section.*student"):
        load_params(path, ["teacher", "student"])


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
