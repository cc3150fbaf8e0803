"""Benchmarks: scripts that print numbers and write their section of RESULTS.md."""
