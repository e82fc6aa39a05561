"""faqforge's commands.

    python -m faqforge serve [--lora-modules chatbot=models/adapter]   an OpenAI-compatible server
    python -m faqforge chat [--question Q] [--base-url URL --model NAME]   chat with the tuned model
    python -m faqforge fetch [--update]      download the URLs of data/sources.yaml into data/docs/, checked
    python -m faqforge review                review the pairs in the browser (decisions: data/review.jsonl)

The pipeline itself runs with `dvc repro`.
"""

import sys

COMMANDS = {"serve": "faqforge.answering.serve", "chat": "faqforge.answering.chat", "fetch": "faqforge.documents.fetch",
            "review": "faqforge.review.serve"}


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    if not argv or argv[0] not in COMMANDS:
        print(__doc__.strip(), file=sys.stderr)
        return 0 if argv and argv[0] in ("-h", "--help") else 2
    import importlib
    return importlib.import_module(COMMANDS[argv[0]]).main(argv[1:])


if __name__ == "__main__":
    sys.exit(main())
