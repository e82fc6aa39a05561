"""From pairs to a trained student: people's review decisions applied to the
pairs (review); the train/validation split with RAFT records and the source
mix (split); examples, collation and the trainable model
(setup); the Trainer, its arguments, resumption and curves (trainer); and the
finetune stage's run over them (finetune), LoRA/QLoRA or full, single-process
or distributed.

May import: faqforge.core, faqforge.models, faqforge.documents, faqforge.refinement.
"""
