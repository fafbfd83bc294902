"""Benchmarks against peers and published goals: ``.venv/bin/python -m bench.run``."""
