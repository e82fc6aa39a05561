"""The review loop in the browser: people vet the generated pairs, add their own
and try the bot, every decision appended to data/review.jsonl (the format:
faqforge.dataset.decisions; the split stage applies it), and grade the evaluation's
answers, appended to data/eval/grades.jsonl (faqforge.core.grades; the evaluate
stage reads it). The pairs with their chunks, verdicts, clusters and decisions,
filtered in memory (store); the evaluation's questions and answers to grade
(grading); the FastAPI app and its page, served without a build step or CDN
(app, static/); the command (serve).

May import: faqforge.core, faqforge.hygiene, faqforge.models, faqforge.documents, faqforge.refinement,
faqforge.dataset, faqforge.answering.
"""
