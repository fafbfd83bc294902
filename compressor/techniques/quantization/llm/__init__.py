"""Decoder-LLM quantization methods (GPTQ, AWQ and the like) go here: each plugged into a walker
that loads one decoder layer at a time, pushes the calibration activations through it and
quantizes it, so memory follows the largest layer, not the model (docs/architecture.md)."""
