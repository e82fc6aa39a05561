"""From pairs to a trained student: the train/validation split with RAFT
records and the source mix (split), and fine-tuning, LoRA/QLoRA or full,
single-process or distributed (finetune).

May import: faqforge.core, faqforge.models, faqforge.documents.
"""
