import pytest

from faqforge.dataset.split import split_pairs, to_messages
from faqforge.synthesis.augment import example_questions, paraphrase_messages, parse_paraphrases, variants_of
from tests.support.sections import changed, section


def mix(values):
    """split.mix as the split section holds it."""
    return section("split", mix=values).mix


def test_split_is_deterministic_and_groups_never_straddle():
    pairs = [{"id": f"p{i}-{k}", "group": f"g{i}", "doc": f"d{i % 3}", "question": "q", "answer": "a"}
             for i in range(50) for k in range(3)]
    train, val = split_pairs(pairs, 0.2, seed=0, by="group")
    assert (train, val) == split_pairs(pairs, 0.2, seed=0, by="group")
    assert not {p["group"] for p in train} & {p["group"] for p in val}
    assert 0 < len(val) < len(pairs)
    train, val = split_pairs(pairs, 0.2, seed=0, by="doc")
    assert not {p["doc"] for p in train} & {p["doc"] for p in val}


def test_the_stable_draw_is_the_same_in_every_process_and_spread_evenly():
    """One helper draws every split, mix, RAFT coin, sample and order: sha256, not hash(), so
    another process (another PYTHONHASHSEED) or machine splits the same pairs the same way."""
    import os
    import subprocess
    import sys

    from faqforge.core.records import stable_unit
    from tests.support.project import ROOT
    # the values of the formula every split so far was drawn with: the same pairs stay on the same side
    assert stable_unit(0, "g1") == 0.08782452506312495 and stable_unit("mix", 0, "g1") == 0.06806706939387812
    script = "from faqforge.core.records import stable_unit; print(repr(stable_unit(0, 'g1')))"
    for seed in ("1", "2"):
        out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True,
                             env={**os.environ, "PYTHONHASHSEED": seed, "PYTHONPATH": str(ROOT)}).stdout
        assert float(out) == stable_unit(0, "g1")
    draws = [stable_unit(7, f"group-{i}") for i in range(4000)]
    assert all(0 <= d < 1 for d in draws) and 0.18 < sum(d < 0.2 for d in draws) / len(draws) < 0.22


def test_split_never_leaves_val_empty_with_two_groups():
    pairs = [{"id": "a", "group": "a"}, {"id": "b", "group": "b"}]
    train, val = split_pairs(pairs, 0.01, seed=0, by="group")
    assert len(train) == 1 and len(val) == 1


def test_messages_format():
    record = to_messages({"id": "p", "group": "g", "question": "Q?", "answer": "A."}, "Be brief.")
    assert record == {"id": "p", "group": "g", "messages": [
        {"role": "system", "content": "Be brief."}, {"role": "user", "content": "Q?"},
        {"role": "assistant", "content": "A."}]}


def test_paraphrases_parsed_and_copies_dropped():
    assert parse_paraphrases("1. How is it run?\n- \"What runs it?\"\nnot a question", 5) == [
        "How is it run?", "What runs it?"]
    pair = {"id": "p", "group": "g", "question": "How do I run it?", "answer": "make run"}
    variants, dropped = variants_of(pair, "How do I run it?\nWhat command runs it?\nwhat command runs it", 3)
    assert [v["question"] for v in variants] == ["What command runs it?"]
    assert variants[0]["variant_of"] == "p" and variants[0]["group"] == "g" and variants[0]["answer"] == "make run"
    assert dropped[0]["why"] == "exact copy after normalisation"


AUGMENT = section("augment", paraphrases=2, system_prompt="Rewrite.", user_prompt="Write {k} ways to ask: {question}",
                  examples=[{"question": "When do shops open?", "paraphrases": ["What time do shops open?"]}])


def test_paraphrase_prompt_has_examples_as_turns():
    messages = paraphrase_messages({"question": "How do I run it?"}, AUGMENT)
    assert [m["role"] for m in messages] == ["system", "user", "assistant", "user"]
    assert messages[1]["content"] == "Write 1 ways to ask: When do shops open?"
    assert messages[2]["content"] == "What time do shops open?"
    assert messages[3]["content"] == "Write 2 ways to ask: How do I run it?"


def test_paraphrase_copying_an_example_is_dropped():
    pair = {"id": "p", "group": "g", "question": "How do I run it?", "answer": "make run"}
    variants, dropped = variants_of(pair, "What time do shops open?\nHow is it started?", 2,
                                    example_questions(AUGMENT))
    assert [v["question"] for v in variants] == ["How is it started?"]
    assert dropped[0]["why"] == "copies a worked example from the prompt"


def test_instruction_triples_flow_through_dedup_decontaminate_augment_split():
    from faqforge.core.sections import Decontaminate, Dedup
    from faqforge.dataset.split import to_messages
    from faqforge.refinement.decontaminate import contamination
    from faqforge.refinement.dedup import near_duplicate_clusters
    from faqforge.synthesis.augment import variants_of
    triple = {"id": "t1", "chunk_id": "c", "doc": "d", "instruction": "Explain how dvc push works",
              "input": "with an S3 remote", "output": "It uploads the cache to the remote."}
    copy = {**triple, "id": "t2", "output": "It uploads cached files to S3."}
    kept, dropped = near_duplicate_clusters([triple, copy], Dedup(scorer="token_sort_ratio", threshold=90))
    assert [p["id"] for p in kept] == ["t1"] and dropped[0]["duplicate_of"] == "t1"
    evalset = [{"question": "Explain how dvc push works with an S3 remote", "answer": "x"}]
    clean, leaked = contamination([triple], evalset, Decontaminate(ngram=13, question_threshold=85))
    assert not clean and "eval item 0" in leaked[0]["why"]
    variants, _ = variants_of({**triple, "group": "t1"}, "How does dvc push work?", 1)
    assert variants[0]["instruction"] == "How does dvc push work?" and variants[0]["input"] == "with an S3 remote"
    messages = to_messages(triple, "sys")["messages"]
    assert messages[1]["content"] == "Explain how dvc push works\n\nwith an S3 remote"
    assert messages[2]["content"] == "It uploads the cache to the remote."


def test_rephrased_answers_kept_only_when_no_fact_is_lost():
    from faqforge.synthesis.augment import answer_messages, facts
    pair = {"id": "p", "group": "g", "question": "How do I push?",
            "answer": "Run `dvc push` to upload up to 5 GB from data/docs."}
    assert facts(pair["answer"]) == {"`dvc push`", "5", "data/docs"}
    questions = "How can I push?\nWhat uploads my data?\nHow is data pushed?"
    answers = ("1. To upload up to 5 GB from data/docs, run `dvc push`.\n"
               "2. Run `dvc pull` to upload up to 5 GB from data/docs.\n"
               "3. Run `dvc push` to upload up to 5 GB from data/docs.")
    variants, dropped = variants_of(pair, questions, 3, answers_reply=answers)
    assert [v["answer"] for v in variants] == ["To upload up to 5 GB from data/docs, run `dvc push`.",
                                               pair["answer"], pair["answer"]]
    assert variants[0]["answer_rephrased"] and "answer_rephrased" not in variants[2]  # a copy is no rephrasing
    assert [d["why"] for d in dropped] == [
        "rephrased answer loses '`dvc push`'; the variant keeps the original answer"]
    assert dropped[0]["answer"].startswith("Run `dvc pull`") and dropped[0]["variant_of"] == "p"
    messages = answer_messages(pair, changed(AUGMENT, answer_system_prompt="Keep facts.",
                                             answer_prompt="Q: {question}\nA: {answer}\nWrite {k} ways."))
    assert messages[-1]["content"] == f"Q: How do I push?\nA: {pair['answer']}\nWrite 2 ways."


def test_instruction_output_is_rephrased_in_its_own_field():
    triple = {"id": "t", "group": "g", "instruction": "Explain dvc push", "input": "", "output": "It uploads 3 files."}
    variants, _ = variants_of(triple, "How does dvc push work?", 1, answers_reply="It sends 3 files to the remote.")
    assert variants[0]["output"] == "It sends 3 files to the remote." and "answer" not in variants[0]


def mix_corpus():
    """A huge manual (60 groups of 2) drowning a small FAQ (5 groups of 2) and a top-level page (3 pairs)."""
    pairs = []
    for source, groups, size in (("manual", 60, 2), ("faq", 5, 2)):
        for g in range(groups):
            pairs += [{"id": f"{source}{g}-{k}", "group": f"{source}{g}", "doc": f"data/docs/{source}/part{g % 3}.md",
                       "question": f"Q {source} {g} {k}?", "answer": "A."} for k in range(size)]
    pairs += [{"id": f"top{k}", "group": f"top{k}", "doc": "data/docs/readme.md", "question": "Q?", "answer": "A."}
              for k in range(3)]
    return pairs


def test_sources_are_the_subfolders_of_data_docs():
    from faqforge.dataset.split import source_of
    assert source_of("data/docs/manual/part1.md") == "manual"
    assert source_of("data/docs/manual/deep/x.pdf") == "manual"
    assert source_of("data/docs/readme.md") == "docs"


def test_mix_upweights_caps_and_thins_sources_with_whole_groups_deterministically():
    from faqforge.dataset.split import mix_sources
    pairs = mix_corpus()
    mixed, removed, table = mix_sources(pairs, mix({"manual": {"weight": 0.5, "max_pairs": 40}, "faq": 3}), seed=0, by="group")
    assert table == {"docs": {"pairs_before": 3, "weight": 1.0, "max_pairs": None, "pairs_after": 3},
                     "faq": {"pairs_before": 10, "weight": 3.0, "max_pairs": None, "pairs_after": 30},
                     "manual": {"pairs_before": 120, "weight": 0.5, "max_pairs": 40, "pairs_after": 40}}
    manual = [p for p in mixed if p["doc"].startswith("data/docs/manual/")]
    groups = {}
    for p in manual:
        groups.setdefault(p["group"], set()).add(p["id"])
    assert all(len(ids) == 2 for ids in groups.values())  # groups move whole
    assert len(removed) == 80 and {d["reason"] for d in removed} == {"mix: down-weighted"}
    assert all("max_pairs 40" in d["why"] for d in removed)
    faq_ids = [p["id"] for p in mixed if p["doc"].startswith("data/docs/faq/")]
    assert len(set(faq_ids)) == 30 and sum("~" in i for i in faq_ids) == 20
    assert all(p["copy_of"] == p["id"].split("~")[0] for p in mixed if "~" in p["id"])
    assert mix_sources(pairs, mix({"manual": {"weight": 0.5, "max_pairs": 40}, "faq": 3}), seed=0, by="group")[0] == mixed
    half, _, _ = mix_sources(pairs, mix({"faq": 1.4}), seed=0, by="group")
    assert sum(p["doc"].startswith("data/docs/faq/") for p in half) == 14  # 5 groups + 2 of them again
    unchanged, nothing, _ = mix_sources(pairs, mix({}), seed=0, by="group")
    assert sorted(p["id"] for p in unchanged) == sorted(p["id"] for p in pairs) and nothing == []


def test_a_mix_source_the_data_lacks_is_named_with_the_sources_it_has():
    from faqforge.core.io import PipelineError
    from faqforge.dataset.split import mix_sources
    with pytest.raises(PipelineError, match="split.mix: no source 'manuals'; the sources .* are: docs, faq, manual"):
        mix_sources(mix_corpus(), mix({"manuals": 2}), seed=0, by="group")


@pytest.mark.parametrize("values, message", [({"faq": -1}, r"split.mix.faq: .*greater than or equal to 0"),
                                             ({"faq": {"max_pairs": 2.5}}, r"split.mix.faq.max_pairs: .*integer")])
def test_a_bad_mix_value_is_named_when_params_yaml_is_read(values, message):
    from faqforge.core.config import parse_section
    from faqforge.core.io import PipelineError
    with pytest.raises(PipelineError, match="params.yaml: " + message):
        parse_section("params.yaml", "split", {"mix": values})
