"""Decoder LLMs (causal LMs): inspection, layer-by-layer weight-only quantization (GPTQ, RTN),
the formats LLM runtimes serve (compressed-tensors for vLLM, ONNX Runtime GenAI folders) and the
measurements LLM users read (perplexity, greedy agreement, decode speed, memory)."""
