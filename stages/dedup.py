"""Remove near-duplicate pairs, one representative kept per cluster.

    dvc repro dedup             # or: python stages/dedup.py
"""

from faqforge.dedup import near_duplicate_clusters
from faqforge.io import load_params, read_jsonl, write_json, write_jsonl
from faqforge.stage import run


def main():
    p = load_params(sections=["dedup"])["dedup"]
    pairs = read_jsonl("data/qa_curated.jsonl")
    kept, dropped = near_duplicate_clusters(pairs, p["field"], p["scorer"], p["threshold"], p["prefer"])
    write_jsonl("data/qa_deduped.jsonl", kept)
    write_jsonl("data/dedup_dropped.jsonl", dropped)
    exact = sum(d["reason"] == "exact duplicate" for d in dropped)
    write_json("metrics/dedup.json", {"pairs_in": len(pairs), "kept": len(kept), "dropped": len(dropped),
                                      "exact_duplicates": exact, "near_duplicates": len(dropped) - exact,
                                      "clusters_with_duplicates": len({d["cluster"] for d in dropped})})
    print(f"dedup: kept {len(kept)} of {len(pairs)} pairs; dropped {len(dropped)} duplicates "
          f"(see data/dedup_dropped.jsonl)")


if __name__ == "__main__":
    run(main)
