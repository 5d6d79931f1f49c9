"""Readers of the benchmarks' on-disk formats (one module per format)."""
