"""Benchmarks: scenario generator and timing harness (python -m benchmarks); see docs/benchmarks.md."""
