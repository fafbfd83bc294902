"""modelpress engine: a pure library on torch (no web, queue or database imports).

Names are imported lazily so that light entry points (the measurement probe) do not
pay for importing torch and transformers.
"""

from importlib import import_module
from typing import Any

_EXPORTS = {
    "CompressionError": "compressor.errors",
    "InvalidModelError": "compressor.errors",
    "InvalidRecipeError": "compressor.errors",
    "UnsafeArchiveError": "compressor.errors",
    "UnsupportedModelError": "compressor.errors",
    "MeasureSettings": "compressor.measure.settings",
    "CompressionResult": "compressor.pipeline",
    "compress_model": "compressor.pipeline",
    "CompressionReport": "compressor.report",
    "job_inputs": "compressor.datasets",
    "Recipe": "compressor.recipe",
    "Target": "compressor.target",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'compressor' has no attribute {name!r}")
    return getattr(import_module(_EXPORTS[name]), name)
