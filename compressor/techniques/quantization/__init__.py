"""Quantization: the config (``config.py``), the step that dispatches its scheme
(``handler.py``), the ONNX Runtime schemes (``onnx_schemes.py``, with ``conv.py`` for
convolutional graphs and ``smoothing.py`` for SmoothQuant), torch casts (``torch_cast.py``),
weight sharing (``weight_sharing.py``, a torch step: k-means codebooks per layer) and ``llm/`` for the decoder-LLM methods that quantize one layer at a time."""

from compressor.techniques.quantization.config import (
    QuantizationConfig,
    check_weight_only_graph,
)
from compressor.techniques.quantization.handler import QuantizationHandler
from compressor.techniques.quantization.weight_sharing import WeightSharingConfig

__all__ = [
    "QuantizationConfig",
    "QuantizationHandler",
    "WeightSharingConfig",
    "check_weight_only_graph",
]
