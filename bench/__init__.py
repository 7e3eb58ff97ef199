"""Benchmarks of the pipeline, run by hand (`python -m bench`); never part of the test suite."""
