"""faqforge's tests: tests/test_<module>.py per library module, the end-to-end pipeline
tests, and the helpers they and bench/ share (support)."""
