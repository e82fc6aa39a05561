"""The data report: funnel, lengths, pairs per document, samples.

    dvc repro report            # or: python stages/report.py

Writes reports/data.md and, for `dvc plots diff`, plots/data_funnel.csv,
plots/data_lengths.csv and plots/data_per_doc.csv.
"""

from faqforge.core.config import load_config
from faqforge.core.stage import run
from faqforge.evaluation.data_report import write_report


def main():
    config = load_config(sections=["hygiene", "generate"])
    print("report: " + write_report(config["hygiene"], config["generate"].language))


if __name__ == "__main__":
    run(main)
