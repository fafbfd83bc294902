"""A goal over a causal LM: the weight-only settings its runtime serves, each a candidate.

Each candidate is one quantization step with ``method: "auto"``, so every child already keeps
the best of RTN, GPTQ and AWQ on held-out perplexity; the search then varies what changes the
bytes: bits, group size (finer groups cost scale bytes and buy accuracy), the embedding and
head's bits on ONNX Runtime GenAI, and the block type on llama.cpp (Q4_0 symmetric, Q4_1
asymmetric, Q8_0), and which linears stay at 8 bits (SENSITIVE). The goal's objective picks among those meeting the perplexity budget.
"""

from __future__ import annotations

from compressor.search.goal import Goal
from compressor.techniques import QuantizationConfig

FINE_GROUP = 32
# The linears that lose the most at 4 bits, kept at 8 by llama.cpp's Q4_K_M mixes too (there:
# Q6_K). Named as in every architecture vllm and llama.cpp artifacts are built for.
SENSITIVE = ("self_attn.v_proj", "mlp.down_proj")
MIXED = "int4, attention values and MLP down projections at 8 bits"


def _int4(**kw: object) -> QuantizationConfig:
    return QuantizationConfig(scheme="int4_weight_only", method="auto", **kw)  # type: ignore[arg-type]


def llm_settings(runtime: str, goal: Goal) -> list[tuple[QuantizationConfig, str]]:
    """(step, purpose) per candidate, smallest download first; none for another runtime."""
    if not goal.allows("quantization"):
        return []
    int8 = QuantizationConfig(scheme="int8_weight_only", method="auto")
    if runtime == "vllm":
        return [
            (_int4(), "int4, default groups (128 where the width divides)"),
            (_int4(group_size=FINE_GROUP), f"int4, groups of {FINE_GROUP}"),
            (_int4(keep_8bit=SENSITIVE), MIXED),
            (int8, "int8"),
        ]
    if runtime == "onnxruntime-genai":
        return [
            (_int4(embedding_bits=4), "int4, embedding table and head at 4 bits too"),
            (_int4(), "int4, embedding table and head at 8 bits"),
            (_int4(group_size=FINE_GROUP), f"int4, groups of {FINE_GROUP}, table at 8 bits"),
        ]
    if runtime == "llama.cpp":
        return [
            (_int4(symmetric=True), "Q4_0 (int4, symmetric blocks of 32)"),
            (_int4(), "Q4_1 (int4, blocks of 32 with a minimum)"),
            (_int4(keep_8bit=SENSITIVE), f"Q4_1 with Q8_0 where it counts: {MIXED}"),
            (int8, "Q8_0 (int8)"),
        ]
    return []


__all__ = ["FINE_GROUP", "SENSITIVE", "llm_settings"]
