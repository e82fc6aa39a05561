"""Materialise the student model as a safetensors checkpoint in models/base/.

    dvc repro base_model        # or: python stages/base_model.py

Reads `student.model` (embedded:..., a Hugging Face id or a local path). Later
stages, and the local teacher when it is the same model, load this copy in seconds.
"""

import time

from faqforge.core.config import load_config
from faqforge.core.io import write_json
from faqforge.core.stage import run
from faqforge.models.checkpoints import materialise

OUT = "models/base"


def main():
    spec = load_config(sections=["student"])["student"].model
    start = time.monotonic()
    info = materialise(spec, OUT)
    write_json("metrics/base_model.json", {**info, "seconds": round(time.monotonic() - start, 1)})
    print(f"base_model: {spec} -> {OUT} ({info['parameters'] / 1e6:.0f}M parameters)")


if __name__ == "__main__":
    run(main)
