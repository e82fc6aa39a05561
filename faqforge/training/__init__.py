"""What trains the student on the dataset's records: examples, collation and the
trainable model (setup); the Trainer, its arguments, resumption and curves
(trainer); the finetune stage's run over them (finetune), LoRA/QLoRA or
full, single-process or distributed; and the retrieval encoder's fine-tuning
on the pairs (encoder) with the retriever stage's run around it: the split's
training side, validation and the abstention threshold (retriever).

May import: faqforge.core, faqforge.models, faqforge.dataset, faqforge.documents.
"""
