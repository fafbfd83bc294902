"""API keys, the caller they identify, and the tenant scope every request's rows are read in."""
