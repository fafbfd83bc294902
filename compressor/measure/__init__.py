"""One measurement module for every technique: size, parameters, latency, memory, fidelity.

Submodules are imported by name (``compressor.measure.runtime``...) so that the probe
child process stays light.
"""
