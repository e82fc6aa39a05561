"""params.yaml's sections as frozen pydantic models: every key with its type,
its default (params.yaml's own value, a test holds the two together) and its
allowed values, declared once. What each knob does is documented next to it in
params.yaml; faqforge.core.config reads and checks the file against these."""

from typing import Annotated, Literal, get_args, get_origin

from pydantic import Field

from faqforge.core.section_types import Number, Section, Transport


class Teacher(Transport):
    backend: Literal["local", "openai"] = "local"
    model: str = Field("embedded:smollm2-135m-instruct", min_length=1)
    temperature: Number = Field(0.0, ge=0)
    top_p: Number = Field(1.0, gt=0, le=1)
    max_tokens: int = Field(512, ge=1)
    seed: int = 0
    context_window: int = Field(8192, ge=1)
    batch_size: int = Field(16, ge=1)
    engine: Literal["process", "ray"] = "process"
    ray_actors: int = Field(2, ge=1)
    ray_shard: int = Field(50_000, ge=1)
    usd_per_1m_prompt_tokens: Number = Field(0.0, ge=0)
    usd_per_1m_completion_tokens: Number = Field(0.0, ge=0)
    budget_usd: Number | None = Field(None, ge=0)
    guided_no_repeat_ngram: int = Field(4, ge=0)


class Student(Section):
    model: str = "embedded:smollm2-135m-instruct"
    dtype: Literal["auto", "float32", "bfloat16", "float16"] = "auto"


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
    min_questions: int = Field(2, ge=1)
    max_questions: int = Field(3, ge=1)
    max_tokens: int = Field(384, ge=1)
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
    threshold: Number = Field(90, gt=0, le=100)        # 0 would call every pair a duplicate of every other
    answer_threshold: Number | None = Field(None, gt=0, le=100)
    prefer: list[Literal["judge_score", "p_yes", "grounding", "longest_answer", "shortest_answer", "earliest"]] = [
        "judge_score", "p_yes", "longest_answer", "earliest"]


class Decontaminate(Section):
    ngram: int = Field(13, ge=1)
    min_answer_words: int = Field(5, ge=1)
    scorer: Scorer = "token_sort_ratio"
    question_threshold: Number = Field(85, gt=0, le=100)
    answer_threshold: Number = Field(90, gt=0, le=100)


class AugmentExample(Section):
    question: str
    paraphrases: list[str]


class Augment(Section):
    paraphrases: int = Field(0, ge=0)
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
    model: str | None = "models/retriever"
    base_url: str | None = None
    api_key_env: str | None = "OPENAI_API_KEY"
    batch_size: int = Field(64, ge=1)


class Index(Section):
    method: Literal["bm25", "dense", "hybrid"] = "hybrid"
    passage_words: int = Field(60, ge=0)
    with_section: bool = True
    bm25: Bm25 = Bm25()
    dense: Dense = Dense()
    rrf_k: int = Field(60, ge=1)


class Retriever(Section):
    base: str = "embedded:all-minilm-l6-v2"
    epochs: int = Field(1, ge=0)
    batch_size: int = Field(32, ge=2)
    learning_rate: Number = Field(5e-5, gt=0)
    warmup_ratio: Number = Field(0.1, ge=0, le=1)
    seed: int = 0
    max_false_refusals: Number = Field(0.1, ge=0, lt=1)


class Raft(Section):
    passages: int = Field(2, ge=1)
    order: Literal["retrieved", "shuffled"] = "retrieved"
    oracle_p: Number = Field(1.0, ge=0, le=1)
    refusal_share: Number = Field(0.05, ge=0, le=1)
    target: Literal["answer", "evidence"] = "evidence"
    draws: int = Field(1, ge=1)


class SourceMix(Section):
    weight: Number = Field(1, ge=0)
    max_pairs: int | None = Field(None, ge=0)


class Split(Section):
    context: Literal["raft", "closed_book"] = "raft"
    raft: Raft = Raft()
    val_fraction: Number = Field(0.1, ge=0, lt=1)
    seed: int = 0
    by: Literal["group", "doc"] = "group"
    mix: dict[str, Annotated[Number, Field(ge=0)] | SourceMix] = {}   # a weight, or weight and max_pairs
    system_prompt: str = ("You are the faqforge help assistant. Answer questions about faqforge briefly and "
                          "accurately.")


class Review(Section):
    require: bool = False
    reviewer: str | None = None


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
    api_key_env: str | None = "FAQFORGE_SERVE_KEY"
    concurrency: Annotated[int, Field(ge=1)] | Literal["auto"] = "auto"
    timeout: Number = Field(120, gt=0)
    max_retries: int = Field(5, ge=0)
    insecure_http: bool = False

    def transport(self):
        """The endpoint as faqforge.models.openai_client reaches it; what served
        evaluation does not set (pacing, backoff) keeps Transport's defaults."""
        return Transport(**self.model_dump(include=set(Transport.model_fields)))


class EvaluateExample(Section):
    question: str
    reference: str
    answer: str
    reply: str


class EvaluateJudge(Section):
    enabled: bool = False
    arms: list[Literal["base_closed", "tuned_closed", "base_rag", "tuned_rag", "evidence", "top_passage",
                       "best_sentence", "oracle_sentence"]] = ["base_rag", "tuned_rag"]
    max_tokens: int = Field(8, ge=1)
    top_logprobs: int | None = Field(5, ge=1, le=20)
    min_control_accuracy: Number = Field(0.75, ge=0, le=1)
    system_prompt: str
    user_prompt: str
    examples: list[EvaluateExample]


class Evaluate(Section):
    closed_book: bool = False
    max_new_tokens: int = Field(64, ge=1)
    temperature: Number = Field(0.0, ge=0)
    stop: list[Annotated[str, Field(min_length=1)]] = Field([], max_length=4)
    batch_size: int = Field(16, ge=1)
    bootstrap_resamples: int = Field(2000, ge=1)
    seed: int = 0
    served: Served = Served()
    judge: EvaluateJudge


SECTIONS = {"teacher": Teacher, "student": Student, "ingest": Ingest, "hygiene": Hygiene, "generate": Generate,
            "curate": Curate, "dedup": Dedup, "decontaminate": Decontaminate, "augment": Augment,
            "retriever": Retriever, "index": Index, "split": Split, "review": Review, "finetune": Finetune,
            "evaluate": Evaluate}


def choices(model, key):
    """The allowed values of a key declared as a Literal (or a list of them): the
    library's checks and tables read them from here, so they are declared once."""
    annotation = model.model_fields[key].annotation
    while get_origin(annotation) is list:
        annotation = get_args(annotation)[0]
    return get_args(annotation)
