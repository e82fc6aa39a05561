"""The foundation every other part stands on: typed params (config), atomic
files and JSON Lines (io), the Q&A record's fields and helpers (records), the
chat contract a student is trained and asked with (chat_format), and what every
stage script shares (stage).

May import: nothing else in faqforge.
"""
