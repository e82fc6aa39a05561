"""What the teacher is asked and how its replies become records:
self-instruct pair writing (generate), rule checks and the judge's prompt
(curate), and question paraphrases (augment).

May import: faqforge.core, faqforge.hygiene, faqforge.teacher, faqforge.refinement.
"""
