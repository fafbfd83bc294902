"""Quantization: the config (``config.py``), the step that dispatches its scheme
(``handler.py``), the ONNX Runtime schemes (``onnx_schemes.py``, with ``conv.py`` for
convolutional graphs and ``smoothing.py`` for SmoothQuant), torch casts (``torch_cast.py``),
and ``llm/`` for the decoder-LLM methods that quantize one layer at a time."""

from compressor.techniques.quantization.config import (
    QuantizationConfig,
    check_weight_only_graph,
)
from compressor.techniques.quantization.handler import QuantizationHandler

__all__ = ["QuantizationConfig", "QuantizationHandler", "check_weight_only_graph"]
