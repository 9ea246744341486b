"""Benchmarks run by the CLI."""
