"""The benchmarks: run from the project root as modules, e.g. `.venv/bin/python -m bench.dedup`
(see bench/README.md); they share the tests' helpers (tests.support)."""
