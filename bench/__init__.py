"""The benchmarks: one package per benchmark, run as `python -m bench.NAME` (see bench/README.md)."""
