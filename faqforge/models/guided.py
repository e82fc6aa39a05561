"""JSON-schema guided decoding for the local backend (and `serve`).

vLLM, llama.cpp and hosted APIs accept `response_format: {"type": "json_schema"}`
and only let the model emit tokens that keep the reply valid. This does the same
in-process for the shape faqforge asks for: an array of objects whose
properties are strings,

    {"type": "array", "minItems": 2, "maxItems": 3,
     "items": {"type": "object", "required": ["question", "answer"],
               "properties": {"question": {"type": "string", "maxLength": 200}, ...}}}

or one such object. The punctuation between strings is fixed; inside a string
the model chooses freely among tokens without a quote, backslash or newline,
and ends the string by writing the quote (alone or fused with the punctuation
that follows, as BPE vocabularies have tokens like `",`). A string reaching its
`maxLength` is closed. A small teacher that would otherwise ramble for hundreds
of tokens or break the JSON therefore always writes the requested number of
well-formed pairs.
"""

import json
import re

import torch
from transformers import LogitsProcessor

from faqforge.core.io import PipelineError

_FORBIDDEN_IN_STRING = ('"', "\\", "\n", "\r", "\t")
_END_MARGIN = 8  # characters before maxLength at which a string with an end character must end


def string_array_shape(schema):
    """(fields, min_items, max_items, is_array) for a supported schema, where each
    field is (name, max_chars, end_char); raise PipelineError naming what is not
    supported. A string property's `pattern` may be `^[^c]*c$` (for example
    `^[^?]*[?]$`: the string ends at its first question mark)."""
    if not isinstance(schema, dict):
        raise PipelineError(f"json_schema must be an object, got {type(schema).__name__}")
    is_array = schema.get("type") == "array"
    item = schema.get("items") if is_array else schema
    if not isinstance(item, dict) or item.get("type") != "object" or not item.get("properties"):
        raise PipelineError("guided decoding supports an object of string properties, "
                            "or an array of such objects")
    fields = []
    for name, prop in item["properties"].items():
        if not isinstance(prop, dict) or prop.get("type") != "string":
            raise PipelineError(f"guided decoding supports string properties only; {name!r} is not one")
        end_char = None
        if "pattern" in prop:
            found = _END_PATTERN.fullmatch(prop["pattern"])
            if not found or found.group(1) != found.group(2):
                raise PipelineError(f"guided decoding supports patterns like ^[^?]*[?]$ only; "
                                    f"{name!r} has {prop['pattern']!r}")
            end_char = found.group(1).lstrip("\\")
        fields.append((name, int(prop.get("maxLength", 1000)), end_char))
    if is_array:
        min_items = int(schema.get("minItems", 1))
        max_items = int(schema.get("maxItems", max(min_items, 8)))
        if not 1 <= min_items <= max_items:
            raise PipelineError(f"guided decoding needs 1 <= minItems <= maxItems, got {min_items}, {max_items}")
    else:
        min_items = max_items = 1
    return fields, min_items, max_items, is_array


_END_PATTERN = re.compile(r"\^\[\^(\\?.)\][*+]\[?(\\?.)\]?\$")


class _Vocabulary:
    """What each token id spells, indexed for the constraint: built once per tokenizer."""

    def __init__(self, tokenizer, vocab_size):
        self.size = vocab_size
        texts = [tokenizer.decode([i]) if i < len(tokenizer) else "" for i in range(vocab_size)]
        special = set(tokenizer.all_special_ids)
        self.by_text = {}
        plain = torch.zeros(vocab_size, dtype=torch.bool)
        self.quote_tokens = []  # (id, text before the quote, text from the quote on)
        for i, text in enumerate(texts):
            if i in special or not text or "\ufffd" in text:
                continue
            self.by_text.setdefault(text, []).append(i)
            if not any(c in text for c in _FORBIDDEN_IN_STRING) and text.isprintable():
                plain[i] = True
            elif text.count('"') == 1:
                before, after = text.split('"')
                if before.isprintable() and not any(c in before for c in _FORBIDDEN_IN_STRING):
                    self.quote_tokens.append((i, before, '"' + after))
        self.plain = plain
        self.texts = texts
        self.lengths = torch.tensor([len(t) for t in texts])
        self._until = {}

    def ending_with(self, end_char):
        """The shortest plain tokens that end with `end_char` (for example "?" and " ?")."""
        return [i for i, text in enumerate(self.texts) if self.plain[i] and text.strip() == end_char]

    def plain_until(self, end_char):
        """Plain tokens that hold `end_char` at most as their last character."""
        if end_char not in self._until:
            mask = self.plain.clone()
            for i, text in enumerate(self.texts):
                if mask[i] and end_char in text[:-1]:
                    mask[i] = False
            self._until[end_char] = mask
        return self._until[end_char]

    def literal_ids(self, alternatives):
        """Token ids spelling a non-empty prefix of any of the literal alternatives."""
        ids = set()
        for literal in alternatives:
            for end in range(1, len(literal) + 1):
                ids.update(self.by_text.get(literal[:end], ()))
        return ids


_VOCABULARIES = {}


def _vocabulary(tokenizer, vocab_size):
    key = (tokenizer.name_or_path, len(tokenizer), vocab_size)
    if key not in _VOCABULARIES:
        _VOCABULARIES[key] = _Vocabulary(tokenizer, vocab_size)
    return _VOCABULARIES[key]


class _Row:
    """Where one reply stands in the JSON it must spell."""

    def __init__(self, shape, no_repeat_ngram):
        self.fields, self.min_items, self.max_items, is_array = shape
        self.n = no_repeat_ngram
        self.followers = [{} for _ in self.fields]  # per field: (n-1)-gram of tokens -> tokens that followed
        self.current = []          # tokens of the string being written
        self.items = 0
        self.field = None          # index of the string being written, None between strings
        self.text = ""
        self.done = False
        opening = ('[{"' if is_array else '{"') + self.fields[0][0] + '": "'
        self.literals = [(opening, 0)]   # (text still to spell, field it opens or None for the end)
        self.close = "}]" if is_array else "}"

    def closing_literals(self):
        """What may follow the end of the current string, starting with its quote."""
        if self.field + 1 < len(self.fields):
            return [('", "' + self.fields[self.field + 1][0] + '": "', self.field + 1)]
        options = []
        if self.items < self.max_items:
            options.append(('"}, {"' + self.fields[0][0] + '": "', 0))
        if self.items >= self.min_items:
            options.append(('"' + self.close, None))
        return options

    def spell(self, text):
        """Consume `text` against the pending literals; enter the next state when one completes."""
        self.literals = [(rest[len(text):], nxt) for rest, nxt in self.literals if rest.startswith(text)]
        for rest, nxt in self.literals:
            if rest == "":
                self.literals = []
                if nxt is None:
                    self.done = True
                else:
                    self.field, self.text, self.current = nxt, "", []
                    if nxt == 0:
                        self.items += 1
                return

    def advance(self, token_id, vocab):
        text = vocab.texts[token_id]
        if self.done:
            return
        if self.field is None:
            self.spell(text)
            return
        if '"' in text:
            before, after = text.split('"', 1)
            self.text += before
            self.literals = self.closing_literals()
            self.field = None
            self.spell('"' + after)
            return
        self.text += text
        self.current.append(token_id)
        if self.n and len(self.current) >= self.n:
            *prefix, last = self.current[-self.n:]
            self.followers[self.field].setdefault(tuple(prefix), set()).add(last)

    def allowed(self, vocab, stop_id):
        """Boolean mask over the vocabulary of the tokens this row may write next."""
        mask = torch.zeros(vocab.size, dtype=torch.bool)
        if self.done:
            mask[stop_id] = True
            return mask
        if self.field is None:
            mask[list(vocab.literal_ids([rest for rest, _ in self.literals]))] = True
            return mask
        _, max_chars, end_char = self.fields[self.field]
        room = max_chars - len(self.text)
        ended = room <= 0 or (end_char is not None and self.text.endswith(end_char))
        closings = [rest for rest, _ in self.closing_literals()]
        if ended:
            # A full string, or one that reached its end character, may only close.
            mask[list(vocab.literal_ids(closings))] = True
            return mask
        must_end = end_char is not None and room <= _END_MARGIN
        if must_end:
            # Close to maxLength: only the end character may come, so the pattern holds.
            mask[vocab.ending_with(end_char)] = True
        else:
            mask |= vocab.plain if end_char is None else vocab.plain_until(end_char)
            mask &= vocab.lengths <= room  # maxLength is a hard limit
        if self.n and len(self.current) >= self.n - 1:
            # No n-gram twice in the same field of one reply: small models loop,
            # and write the same pair again, otherwise.
            repeats = self.followers[self.field].get(tuple(self.current[-(self.n - 1):]))
            if repeats and not must_end:
                mask[list(repeats)] = False
        for i, before, rest in vocab.quote_tokens:
            if not any(c.startswith(rest) for c in closings) or len(before) > room:
                continue
            complete = self.text + before
            if complete.strip() and (end_char is None or (complete.endswith(end_char)
                                                          and end_char not in before[:-1])):
                mask[i] = True
        return mask


class JsonSchemaGuide(LogitsProcessor):
    """A logits processor that keeps every row of a batch on its schema.

    `shapes` holds one `string_array_shape(...)` per row (rows may ask for
    different numbers of items), or None for a row that is free.
    Pass it to `model.generate(logits_processor=[...])`, or call it at each step of
    a decoding loop that may drop finished rows (`select`).
    """

    def __init__(self, tokenizer, vocab_size, shapes, stop_id, no_repeat_ngram=0):
        self.vocab = _vocabulary(tokenizer, vocab_size)
        self.rows = [_Row(shape, no_repeat_ngram) if shape else None for shape in shapes]
        self.stop_id = stop_id
        self.prompt_length = None

    def select(self, keep):
        """Keep only these rows (positions in the batch), in this order: the others have left the batch."""
        self.rows = [self.rows[k] for k in keep]

    def __call__(self, input_ids, scores):
        if self.prompt_length is None:
            self.prompt_length = input_ids.shape[1]
        elif input_ids.shape[1] > self.prompt_length:
            for row, token_id in zip(self.rows, input_ids[:, -1].tolist()):
                if row:
                    row.advance(token_id, self.vocab)
        free = torch.ones(self.vocab.size, dtype=torch.bool)
        banned = torch.stack([~(row.allowed(self.vocab, self.stop_id) if row else free) for row in self.rows])
        if banned.shape[1] < scores.shape[1]:
            pad = torch.ones(len(self.rows), scores.shape[1] - banned.shape[1], dtype=torch.bool)
            banned = torch.cat([banned, pad], dim=1)
        return scores.masked_fill(banned[:, :scores.shape[1]].to(scores.device), float("-inf"))


def schema_of(response_format):
    """The JSON schema inside an OpenAI `response_format`, or None when there is none."""
    if not response_format or response_format.get("type") != "json_schema":
        return None
    spec = response_format.get("json_schema") or {}
    schema = spec.get("schema")
    if schema is None:
        raise PipelineError("response_format json_schema has no schema")
    return json.loads(json.dumps(schema))
