"""How good the bot is and what the data holds: the students' answers per arm
(answers) beside the search results' own (search_arms), token F1 and refusals
(token_f1), the scores and their intervals (scores, factual), people's grades
against the scores (graded), the teacher as judge with its controls (judge),
reports/eval.md (eval_report), and
reports/data.md: gathered (data_report), counted (data_stats) and rendered
(data_render).

May import: faqforge.core, faqforge.hygiene, faqforge.models, faqforge.documents,
faqforge.teacher, faqforge.refinement, faqforge.dataset.
"""
