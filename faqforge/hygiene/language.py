"""Which language a chunk or a pair is written in, offline.

py3langid (langid.py's maintained fork; its model ships in the wheel, 97
languages) scores the text's natural-language part: code blocks, inline code,
command lines, URLs, paths, flags and identifiers are taken out first, so
`pip install -r requirements.txt` is not "Catalan". Text with fewer than
`min_words` words left, or whose best language scores below
`min_confidence`, is undetermined and kept: a short technical answer is not
dropped for its language.
"""

import re

from faqforge.core.io import PipelineError

# generate.language is a name ("English"); hygiene.languages takes ISO 639-1 codes.
CODES = {"english": "en", "french": "fr", "german": "de", "spanish": "es", "italian": "it", "portuguese": "pt",
         "dutch": "nl", "swedish": "sv", "danish": "da", "norwegian": "no", "finnish": "fi", "polish": "pl",
         "czech": "cs", "russian": "ru", "ukrainian": "uk", "greek": "el", "turkish": "tr", "arabic": "ar",
         "hebrew": "he", "hindi": "hi", "japanese": "ja", "korean": "ko", "chinese": "zh", "vietnamese": "vi",
         "indonesian": "id", "thai": "th", "romanian": "ro", "hungarian": "hu", "catalan": "ca"}

_FENCED = re.compile(r"```.*?(?:```|\Z)", re.S)
_INLINE = re.compile(r"`[^`\n]*`")
_URL = re.compile(r"\b(?:https?|s3|gs|ssh|azure|file)://\S+")
_COMMAND_LINE = re.compile(r"(?m)^\s*(?:\$|>>>|#!|(?:sudo|pip|python3?|dvc|git|make|cd|export|curl|wget|docker|"
                           r"npm|torchrun|accelerate|vllm|ls|cp|mv|rm)\b).*$")
_TECHNICAL = re.compile(r"\S*[/\\_=<>{}()\[\]@#|]\S*|--?\w[\w-]*|\S+\.\w{1,5}\b")  # paths, ids, flags, files
_WORD = re.compile(r"[^\W\d_]{2,}")
SAMPLE_CHARS = 800  # of prose are plenty to tell a language; classifying all of a long chunk only costs time


def language_code(name):
    code = CODES.get(str(name).strip().lower())
    if code is None:
        raise PipelineError(f"params.yaml: generate.language {name!r}: no ISO 639-1 code known for it; "
                            "set hygiene.languages to the codes to keep, e.g. [en].")
    return code


def natural_text(text):
    """The prose of `text`: code, commands, URLs, paths and identifiers removed."""
    for pattern in (_FENCED, _INLINE, _URL, _COMMAND_LINE, _TECHNICAL):
        text = pattern.sub(" ", text)
    return " ".join(text.split())


class LanguageFilter:
    """hygiene.languages / min_words / min_confidence (the hygiene section)."""

    def __init__(self, hygiene, default_language):
        languages = hygiene.languages
        if languages == "any":
            self.languages = None
        else:
            self.languages = set(languages) if languages else {language_code(default_language)}
        self.min_words = hygiene.min_words
        self.min_confidence = hygiene.min_confidence
        self.seen = {}  # detected code (or "undetermined") -> texts checked
        self._identifier = None

    def languages_kept(self):
        return sorted(self.languages) if self.languages is not None else "any"

    def detect(self, text):
        """(code or None when undetermined, confidence, natural words counted)."""
        prose = natural_text(text)
        words = len(_WORD.findall(prose))
        if words < self.min_words:
            return None, 0.0, words
        if self._identifier is None:
            from py3langid.langid import MODEL_FILE, LanguageIdentifier
            self._identifier = LanguageIdentifier.from_model_file(MODEL_FILE, norm_probs=True)
        code, confidence = self._identifier.classify(prose[:SAMPLE_CHARS])
        confidence = round(float(confidence), 3)
        return (code if confidence >= self.min_confidence else None), confidence, words

    def rejects(self, text):
        """None when the text may stay, else (the detected language code, why it goes)."""
        if self.languages is None:
            return None
        code, confidence, _ = self.detect(text)
        self.seen[code or "undetermined"] = self.seen.get(code or "undetermined", 0) + 1
        if code is None or code in self.languages:
            return None
        return code, f"language {code} (confidence {confidence}) not in hygiene.languages {sorted(self.languages)}"
