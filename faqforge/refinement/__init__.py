"""Making the pairs a set worth training on: fuzzy near-duplicate search
(fuzzy), deduplication that keeps the best of each cluster (dedup), and
decontamination against the human-written eval set (decontaminate).

May import: faqforge.core.
"""
