"""params.yaml, typed: one frozen model per section, with its defaults and
allowed values declared here once.

`load_config` reads params.yaml and checks every section a stage asks for
before the stage does any work: a misspelt key is an error naming it, its
section and the nearest valid key; a value outside its choices or of the wrong
type is an error naming the key and what it accepts. Keys left out take the
defaults below, which are params.yaml's own values (a test holds the two
together). What each knob does is documented next to it in params.yaml.
"""

import difflib
import re
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from faqforge.core.io import PipelineError

Number = int | float   # a YAML number kept as written (120 stays 120, 1.0 stays 1.0)


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Teacher(Section):
    backend: Literal["local", "openai"] = "local"
    model: str = "embedded:smollm2-135m-instruct"
    base_url: str | None = "http://127.0.0.1:8000/v1"
    api_key_env: str | None = "OPENAI_API_KEY"
    temperature: Number = Field(0.0, ge=0)
    top_p: Number = Field(1.0, gt=0, le=1)
    max_tokens: int = Field(512, ge=1)
    seed: int = 0
    context_window: int = Field(8192, ge=1)
    batch_size: int = Field(16, ge=1)
    concurrency: int = Field(8, ge=1)
    timeout: Number = Field(120, gt=0)
    max_retries: int = Field(5, ge=0)
    backoff_seconds: Number = Field(1.0, ge=0)
    max_backoff_seconds: Number = Field(60, ge=0)
    requests_per_minute: Number | None = Field(None, gt=0)
    tokens_per_minute: Number | None = Field(None, gt=0)
    usd_per_1m_prompt_tokens: Number = Field(0.0, ge=0)
    usd_per_1m_completion_tokens: Number = Field(0.0, ge=0)
    budget_usd: Number | None = Field(None, ge=0)
    guided_no_repeat_ngram: int = Field(4, ge=0)


class Student(Section):
    model: str = "embedded:smollm2-135m-instruct"


class Ingest(Section):
    tokenizer: str = "auto"
    max_tokens: int | Literal["auto"] = 320
    reserve_tokens: int = Field(1500, ge=0)
    overlap_tokens: int = Field(24, ge=0)
    min_tokens: int = Field(48, ge=0)


PiiAction = Literal["redact", "drop", "keep"]
PiiKind = Literal["email", "phone", "ip_address", "credit_card", "iban", "credential"]


class Pii(Section):
    action: PiiAction = "redact"
    kinds: list[PiiKind] = ["email", "phone", "ip_address", "credit_card", "iban", "credential"]
    overrides: dict[PiiKind, PiiAction] = {}


class Hygiene(Section):
    pii: Pii = Pii()
    languages: str | list[str] | None = None
    min_words: int = Field(4, ge=0)
    min_confidence: Number = Field(0.8, ge=0, le=1)


class GenerateExample(Section):
    text: str
    pairs: list[dict[str, str]]


class Generate(Section):
    domain: str = "faqforge, a tool that turns documents into a fine-tuned FAQ chatbot"
    language: str = "English"
    tokens_per_question: int = Field(60, ge=1)
    min_questions: int = Field(3, ge=1)
    max_questions: int = Field(5, ge=1)
    max_tokens: int = Field(512, ge=1)
    max_error_rate: Number = Field(0.1, ge=0, le=1)
    format: Literal["qa", "instruction"] = "qa"
    json_schema: bool = True
    answer_first: bool = True
    answer_style: Literal["plain", "quoted"] = "plain"
    quote_instruction: str = ("For each pair, also copy as quote the sentence of the text that supports the "
                              "answer, word for word.")
    max_chars: dict[str, int] = {"question": 150, "answer": 240, "instruction": 300, "input": 600, "output": 600}
    system_prompt: str
    user_prompt: str
    examples: list[GenerateExample]


class CurateRules(Section):
    min_question_chars: int = 12
    max_question_chars: int = 300
    min_answer_chars: int = 8
    max_answer_chars: int = 600
    require_question_mark: bool = True
    repeated_words: int = Field(4, ge=0)
    reject_patterns: list[str] = [
        r"\b(the|this|given|above|provided) (text|passage|document|excerpt|context|article)\b", r"\bas an ai\b"]


class CurateExample(Section):
    text: str
    question: str
    answer: str
    reply: str


class CurateJudge(Section):
    enabled: bool = True
    min_score: int = Field(3, ge=1, le=5)
    top_logprobs: int | None = Field(5, ge=1, le=20)
    min_p_yes: Number | None = Field(0.5, ge=0, le=1)
    on_unparsed: Literal["keep", "drop"] = "keep"
    max_tokens: int = Field(64, ge=1)
    system_prompt: str
    user_prompt: str
    examples: list[CurateExample]


class Curate(Section):
    min_grounding: Number = Field(0.5, ge=0, le=1)
    max_error_rate: Number = Field(0.1, ge=0, le=1)
    rules: CurateRules = CurateRules()
    judge: CurateJudge


Scorer = Literal["ratio", "token_sort_ratio", "token_set_ratio", "partial_ratio"]


class Dedup(Section):
    scorer: Scorer = "token_sort_ratio"
    threshold: Number = Field(90, ge=0, le=100)
    answer_threshold: Number | None = Field(None, ge=0, le=100)
    prefer: list[Literal["judge_score", "p_yes", "grounding", "longest_answer", "shortest_answer", "earliest"]] = [
        "judge_score", "p_yes", "longest_answer", "earliest"]


class Decontaminate(Section):
    ngram: int = Field(13, ge=1)
    min_answer_words: int = Field(5, ge=1)
    scorer: Scorer = "token_sort_ratio"
    question_threshold: Number = Field(85, ge=0, le=100)
    answer_threshold: Number = Field(90, ge=0, le=100)


class AugmentExample(Section):
    question: str
    paraphrases: list[str]


class Augment(Section):
    paraphrases: int = Field(1, ge=0)
    answers: bool = False
    max_tokens: int = Field(96, ge=1)
    answer_max_tokens: int = Field(256, ge=1)
    max_error_rate: Number = Field(0.1, ge=0, le=1)
    system_prompt: str
    user_prompt: str
    answer_system_prompt: str
    answer_prompt: str
    examples: list[AugmentExample]


class Bm25(Section):
    k1: Number = 1.5
    b: Number = 0.75
    stopwords: str | None = "en"
    stemmer: str | None = "english"


class Dense(Section):
    model: str | None = None
    base_url: str | None = None
    api_key_env: str | None = "OPENAI_API_KEY"
    batch_size: int = Field(64, ge=1)


class Index(Section):
    method: Literal["bm25", "dense", "hybrid"] = "bm25"
    passage_words: int = Field(60, ge=0)
    with_section: bool = True
    bm25: Bm25 = Bm25()
    dense: Dense = Dense()
    rrf_k: int = Field(60, ge=1)


class Raft(Section):
    passages: int = Field(2, ge=1)
    order: Literal["retrieved", "shuffled"] = "retrieved"
    oracle_p: Number = Field(1.0, ge=0, le=1)
    refusal_share: Number = Field(0.05, ge=0, le=1)
    target: Literal["answer", "evidence"] = "evidence"
    draws: int = Field(2, ge=1)


class SourceMix(Section):
    weight: Number = Field(1, ge=0)
    max_pairs: int | None = Field(None, ge=0)


class Split(Section):
    context: Literal["raft", "closed_book"] = "raft"
    raft: Raft = Raft()
    val_fraction: Number = Field(0.1, ge=0, lt=1)
    seed: int = 0
    by: Literal["group", "doc"] = "group"
    mix: dict[str, Number | SourceMix] = {}
    system_prompt: str = ("You are the faqforge help assistant. Answer questions about faqforge briefly and "
                          "accurately.")


class Finetune(Section):
    method: Literal["full", "lora"] = "full"
    lora_r: int = Field(16, ge=1)
    lora_alpha: Number = Field(32, gt=0)
    lora_dropout: Number = Field(0.05, ge=0, lt=1)
    target_modules: str | list[str] = "all-linear"
    epochs: Number = Field(1, gt=0)
    max_steps: int = Field(0, ge=0)
    learning_rate: Number = Field(1.0e-4, gt=0)
    lr_scheduler: str = "cosine"
    warmup_steps: int = Field(5, ge=0)
    batch_size: int = Field(8, ge=1)
    grad_accum: int = Field(1, ge=1)
    group_by_length: bool = True
    max_seq_length: int = Field(640, ge=8)
    overlong: Literal["skip", "error"] = "skip"
    eval_every: int = Field(10, ge=1)
    save_every: int = Field(20, ge=0)
    resume: bool = True
    gradient_checkpointing: bool = False
    precision: Literal["auto", "fp32", "bf16", "fp16"] = "auto"
    quantization: Literal["none", "4bit"] = "none"
    init_adapter: str | None = None
    merge: bool = False
    num_processes: int = Field(1, ge=1)
    launcher: Literal["torchrun", "accelerate"] = "torchrun"
    accelerate_config: str | None = None
    seed: int = 0


class Served(Section):
    base_url: str | None = None
    tuned_model: str = "chatbot"
    base_model: str = "base"
    api_key_env: str | None = "OPENAI_API_KEY"


class EvaluateExample(Section):
    question: str
    reference: str
    answer: str
    reply: str


class EvaluateJudge(Section):
    enabled: bool = True
    arms: list[Literal["base_closed", "tuned_closed", "base_rag", "tuned_rag"]] = ["base_rag", "tuned_rag"]
    max_tokens: int = Field(8, ge=1)
    top_logprobs: int | None = Field(5, ge=1, le=20)
    min_control_accuracy: Number = Field(0.75, ge=0, le=1)
    system_prompt: str
    user_prompt: str
    examples: list[EvaluateExample]


class Evaluate(Section):
    max_new_tokens: int = Field(96, ge=1)
    temperature: Number = Field(0.0, ge=0)
    batch_size: int = Field(16, ge=1)
    bootstrap_resamples: int = Field(2000, ge=1)
    seed: int = 0
    served: Served = Served()
    judge: EvaluateJudge


PARTS = {"hygiene.pii": Pii}
SECTIONS = {"teacher": Teacher, "student": Student, "ingest": Ingest, "hygiene": Hygiene, "generate": Generate,
            "curate": Curate, "dedup": Dedup, "decontaminate": Decontaminate, "augment": Augment,
            "index": Index, "split": Split, "finetune": Finetune, "evaluate": Evaluate}


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
