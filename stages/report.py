"""The data report: funnel, lengths, pairs per document, samples.

    dvc repro report            # or: python stages/report.py

Writes reports/data.md and, for `dvc plots diff`, plots/data_funnel.csv,
plots/data_lengths.csv and plots/data_per_doc.csv.
"""

from faqforge.core.config import load_params
from faqforge.core.stage import run
from faqforge.evaluation.data_report import write_report


def main():
    print("report: " + write_report(load_params(sections=["hygiene", "generate"])))


if __name__ == "__main__":
    run(main)
