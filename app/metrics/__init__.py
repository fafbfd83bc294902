"""Prometheus metrics: HTTP figures of this API process, and job and pool figures read from the
database at scrape time (jobs finish in worker processes, so only the rows know them all)."""
