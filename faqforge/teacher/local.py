"""The in-process backend: a local checkpoint (the embedded model by default)
answers batches of requests with faqforge.models.decoding."""

import json

from faqforge.models.checkpoints import load_model, local_checkpoint
from faqforge.models.decoding import generate_chat
from faqforge.models.guided import schema_of


class LocalBackend:
    """Loads the model on first use, so a run answered from the cache loads nothing."""

    def __init__(self, model, base_dir="models/base", batch_size=8):
        self.spec, self.base_dir, self.batch_size = model, base_dir, batch_size
        self.loaded = None

    def answer(self, requests, desc, finished, budget=None):
        """Answer each (messages, sampling) request; `finished(k, reply)` as each batch ends.
        Requests with the same decoding settings share batches (a response format may differ).
        `budget` is not consulted: in-process decoding has no bill to stop at."""
        if self.loaded is None:
            self.loaded = load_model(local_checkpoint(self.spec, self.base_dir), dtype="auto")
        model, tokenizer = self.loaded
        groups = {}
        for k, (_, sampling) in enumerate(requests):
            plain = {key: v for key, v in sampling.items() if key != "response_format"}
            groups.setdefault(json.dumps(plain, sort_keys=True), []).append(k)
        for members in groups.values():
            sampling = requests[members[0]][1]
            generate_chat(
                model, tokenizer, [requests[k][0] for k in members],
                max_new_tokens=sampling.get("max_tokens", 256), temperature=sampling.get("temperature", 0.0),
                top_p=sampling.get("top_p", 1.0), seed=sampling.get("seed", 0),
                batch_size=self.batch_size, desc=desc,
                schemas=[schema_of(requests[k][1].get("response_format")) for k in members],
                no_repeat_ngram=sampling.get("guided_no_repeat_ngram", 0),
                top_logprobs=sampling.get("top_logprobs"),
                on_result=lambda j, reply, members=members: finished(members[j], reply))
