"""Reproducible benchmarks (scripts that print their figures) and their data generator."""
