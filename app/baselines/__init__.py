"""Baselines: the original's measurement kept per tenant and key, reused by later jobs (issue 24)."""
