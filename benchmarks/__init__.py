"""Benchmark and diagnostic scripts, run from the repository root as modules:
``python -m benchmarks.NAME`` (figures and the commands that made them: docs/benchmarks.md).
Shared helpers live in :mod:`benchmarks.common`."""
