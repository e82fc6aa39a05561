"""The foundation every other part stands on: params.yaml's sections typed
(sections, built from section_types) and read and checked (config), atomic files and JSON Lines (io),
a file's content hash (hashing)
and records looked up by a field on disk (lookup),
the Q&A record's fields and helpers (records), content words stemmed (terms), why a record is dropped (reasons:
every reason code and what it means), the chat contract a student is
trained and asked with (chat_format), people's grades of the evaluation's
answers (grades), and what every stage script
shares (stage: error exits and the shared tail writing records, drops and
metrics).

May import: nothing else in faqforge.
"""
