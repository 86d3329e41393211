"""Benchmarks: throughput scripts, never imported by the package."""
