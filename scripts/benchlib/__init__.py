"""Modules of the benchmark, by phase; the entry point is scripts/bench.py."""
