"""False positives of the credential rules on real text: the sample corpus
(data/docs/, the user documentation), the project's other prose (README, guide,
params, prompts, bench notes, the eval set) and its own code, which is full of
identifiers, model names, paths and hashes. Every span flagged is printed with
its context, so each can be judged by eye; the sample corpus holds no credential.

    .venv/bin/python -m bench.credential_rules
"""

import collections
import json
import subprocess
from pathlib import Path

from faqforge.documents.chunking import find_documents
from faqforge.documents.readers import read_document
from faqforge.hygiene.secrets import find_credentials

ROOT = Path(__file__).resolve().parents[1]


def scan(name, texts):
    words, found = 0, collections.Counter()
    for label, text in texts:
        words += len(text.split())
        for kind, start, end in find_credentials(text):
            found[kind] += 1
            print(f"  {label}: {kind}: {text[max(0, start - 40):end + 5]!r}")
    print(f"{name}: {len(texts)} files, {words:,} words, {sum(found.values())} spans flagged {dict(found)}")


def main():
    files, _ = find_documents(ROOT / "data/docs")
    scan("sample corpus (data/docs/)", [(f.name, "\n".join(b["text"] for b in read_document(f)[1])) for f in files])
    prose = ["README.md", "docs/guide.md", "params.yaml", "prompts.yaml", "bench/README.md"]
    scan("other prose and the eval set", [(p, (ROOT / p).read_text()) for p in prose]
         + [("evalset", json.dumps(json.loads((ROOT / "data/eval/evalset.json").read_text())))])
    tracked = subprocess.run(["git", "ls-files", "faqforge", "stages", "bench"], cwd=ROOT, capture_output=True,
                             text=True, check=True).stdout.split()
    scan("the project's code (faqforge/, stages/, bench/)",
         [(p, (ROOT / p).read_text()) for p in tracked if p.endswith(".py")])


if __name__ == "__main__":
    main()
