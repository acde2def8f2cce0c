"""Evaluation code (the transfer replay on real demand): used by benchmarks and `tiaobo replay`, not at night."""
