"""Benchmarks: `python -m bench` (what `make bench` runs) measures the chat end to end.

Figures, method and commands: docs/benchmarks.md.
"""
