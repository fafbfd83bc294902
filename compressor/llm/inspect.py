"""Is a Hugging Face upload a decoder LLM, and what a user needs to know about it.

Read from config.json through transformers' own config class (no model code runs, nothing is
fetched), so every architecture's spelling (GPT-2's ``n_layer``, Llama's
``num_hidden_layers``) comes out under one name.
"""

from __future__ import annotations

from typing import Any

# The runtimes that serve a causal LM with its KV cache; what each artifact is.
LLM_RUNTIMES = ("onnxruntime-genai", "vllm", "llama.cpp")


def is_causal_lm(config: dict[str, Any]) -> bool:
    """config.json names an architecture transformers builds with AutoModelForCausalLM."""
    from transformers.models.auto.modeling_auto import MODEL_FOR_CAUSAL_LM_MAPPING_NAMES

    names = config.get("architectures") or []
    causal = set(MODEL_FOR_CAUSAL_LM_MAPPING_NAMES.values())
    return any(isinstance(n, str) and n in causal for n in names)


def causal_lm_facts(
    config: dict[str, Any], *, dtypes: dict[str, int], weight_bytes: int
) -> dict[str, Any]:
    """Layers, widths, heads, vocabulary, tying, dtype and bytes of a causal LM's config."""
    from transformers import AutoConfig

    fields = {k: v for k, v in config.items() if k != "model_type"}
    parsed = AutoConfig.for_model(str(config["model_type"]), **fields)
    heads = getattr(parsed, "num_attention_heads", None)
    return {
        "architecture": str((config.get("architectures") or ["?"])[0]),
        "model_type": str(config["model_type"]),
        "layers": getattr(parsed, "num_hidden_layers", None),
        "hidden_size": getattr(parsed, "hidden_size", None),
        "intermediate_size": getattr(parsed, "intermediate_size", None),
        "attention_heads": heads,
        "kv_heads": getattr(parsed, "num_key_value_heads", None) or heads,
        "vocab_size": getattr(parsed, "vocab_size", None),
        "tied_embeddings": bool(getattr(parsed, "tie_word_embeddings", False)),
        "max_position_embeddings": getattr(parsed, "max_position_embeddings", None)
        or getattr(parsed, "n_positions", None),
        "dtype": max(dtypes, key=lambda d: dtypes[d]) if dtypes else None,
        "weight_bytes": weight_bytes,
    }
