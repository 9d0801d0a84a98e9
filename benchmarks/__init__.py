"""Benchmarks: run as modules (``python -m benchmarks.NAME``), never collected by pytest."""
