"""From the cleaned pairs to the training records: people's review decisions,
their file and state (decisions) and their application to the pairs (review);
the train/validation split and the source mix (split); the RAFT records
that show each question with retrieved passages (raft); and the retrieval
encoder's examples, each question with its passage and a hard negative
(encoder_pairs).

May import: faqforge.core, faqforge.documents, faqforge.refinement.
"""
