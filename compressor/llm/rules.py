"""Which recipes and runtimes apply to a causal LM, refused before any work with what does."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from compressor.errors import InvalidRecipeError
from compressor.llm.inspect import LLM_RUNTIMES

if TYPE_CHECKING:
    from compressor.target import Target

# Architectures whose compressed-tensors directory transformers loads back with every weight in
# place (checked in tests/engine/llm/): GPT-2's Conv1D layers are not Linear, which the format
# quantizes, and Phi-3's fused projections do not load back in this transformers version.
VLLM_ARCHITECTURES = ("LlamaForCausalLM", "MistralForCausalLM", "Qwen2ForCausalLM")

# What each LLM runtime's artifact can hold (compressor/llm/pipeline.py builds them).
SCHEMES_BY_RUNTIME = {
    "vllm": ("int4_weight_only", "int8_weight_only", "int8_dynamic"),
    "onnxruntime-genai": ("int4_weight_only",),
    "llama.cpp": ("int4_weight_only", "int8_weight_only"),
}


def check_llm_recipe(
    recipe: Any,  # compressor.recipe.Recipe, which calls this (no import back)
    target: Target,
    *,
    causal_lm: bool,
    architecture: str | None = None,
) -> None:
    runtime = target.runtime
    if runtime in LLM_RUNTIMES and not causal_lm:
        raise InvalidRecipeError(
            f"target.runtime {runtime!r} serves causal LMs (a config.json whose architecture "
            "transformers builds with AutoModelForCausalLM); this model runs on 'onnxruntime' "
            "or 'torch'"
        )
    _check_keep_8bit(recipe, runtime, causal_lm=causal_lm)
    if not causal_lm:
        return
    if runtime == "onnxruntime":
        raise InvalidRecipeError(
            "a causal LM generates with a KV cache, which a single-forward ONNX graph lacks, so "
            "no LLM runtime could serve it: set target.runtime to 'onnxruntime-genai' or "
            "'vllm' ('llama.cpp' for a Llama-family model; or 'torch' to keep the Hugging Face "
            "format, e.g. for fp16/bf16)"
        )
    steps = [(s.technique, getattr(s, "scheme", None)) for s in recipe.steps]
    if runtime not in LLM_RUNTIMES:
        if "nm_sparsity" in [t for t, _ in steps]:
            raise InvalidRecipeError(
                "nm_sparsity on a causal LM is chosen on the calibration text (SparseGPT or "
                "Wanda, layer by layer) for target.runtime 'vllm', whose Hugging Face directory "
                "transformers loads as well: set target.runtime 'vllm'"
            )
        return
    if runtime == "vllm" and len(steps) == 1 and steps[0][0] == "nm_sparsity":
        _check_sparsity(recipe.steps[0], architecture)
        return
    schemes = SCHEMES_BY_RUNTIME[runtime]
    if len(steps) != 1 or steps[0][0] != "quantization" or steps[0][1] not in schemes:
        named = ", ".join(f"{t}({s})" if s else t for t, s in steps)
        raise InvalidRecipeError(
            f"on target.runtime {runtime!r} a causal LM takes one quantization step with "
            f"scheme {' or '.join(repr(s) for s in schemes)}"
            + (" (or one nm_sparsity step, 2:4)" if runtime == "vllm" else "")
            + f"; this recipe has: {named}"
        )
    if runtime == "vllm" and architecture is not None and architecture not in VLLM_ARCHITECTURES:
        raise InvalidRecipeError(
            f"the compressed-tensors directory for vllm is built and checked for "
            f"{', '.join(VLLM_ARCHITECTURES)}, not {architecture}"
            + (
                ": use target.runtime 'onnxruntime-genai'"
                if architecture == "Phi3ForCausalLM"
                else ""
            )
        )
    if runtime == "vllm" and getattr(recipe.steps[0], "symmetric", None) is False:
        raise InvalidRecipeError(
            "vllm artifacts are symmetric (the compressed-tensors loader in transformers reads "
            "no packed zero points): leave 'symmetric' unset or true, or use onnxruntime-genai"
        )
    if steps[0][1] == "int8_dynamic":
        _check_w8a8(recipe.steps[0])
    if runtime == "onnxruntime-genai" and architecture is not None:
        from compressor.llm.genai import SUPPORTED_ARCHITECTURES

        if architecture not in SUPPORTED_ARCHITECTURES:
            raise InvalidRecipeError(
                f"ONNX Runtime GenAI's model builder does not build {architecture} from "
                f"quantized weights; it builds {', '.join(SUPPORTED_ARCHITECTURES)}: use "
                "target.runtime 'vllm' for this model"
            )
    if runtime == "llama.cpp":
        _check_gguf(recipe.steps[0], architecture)
    if target.device == "gpu" and runtime == "onnxruntime-genai":
        raise InvalidRecipeError(
            "onnxruntime-genai artifacts are built and measured for CPU here; submit with "
            "target.device 'cpu' (the folder also loads in ONNX Runtime GenAI's CUDA build)"
        )


def _check_keep_8bit(recipe: Any, runtime: str, *, causal_lm: bool) -> None:
    if not any(getattr(s, "keep_8bit", ()) for s in recipe.steps):
        return
    if not causal_lm:
        raise InvalidRecipeError(
            "keep_8bit chooses a causal LM's Linear layers for 8 bits in an int4 step for "
            "vllm or llama.cpp; on other models use 'exclude' to keep layers in float"
        )
    if runtime == "onnxruntime-genai":
        raise InvalidRecipeError(
            "ONNX Runtime GenAI's model builder takes one bit width for every layer, so "
            "keep_8bit has no artifact there: use target.runtime 'vllm' or 'llama.cpp' "
            "(both hold 4- and 8-bit layers side by side)"
        )


def _check_sparsity(step: Any, architecture: str | None) -> None:
    if (step.n, step.m) != (2, 4):
        raise InvalidRecipeError(
            f"vLLM's sparse kernels run 2:4 (sparse tensor cores), not {step.n}:{step.m}: "
            "leave n and m at 2 and 4"
        )
    if step.exclude:
        raise InvalidRecipeError(
            "a causal LM's 2:4 covers every decoder linear (the compressed-tensors "
            "sparsity_config names one structure for all): leave 'exclude' empty"
        )
    if architecture is not None and architecture not in VLLM_ARCHITECTURES:
        raise InvalidRecipeError(
            f"the vllm directory is built and checked for {', '.join(VLLM_ARCHITECTURES)}, "
            f"not {architecture}"
        )


def _check_w8a8(step: Any) -> None:
    if step.method == "awq":
        raise InvalidRecipeError(
            "int8_dynamic on a causal LM scales activation outliers into the weights with "
            "SmoothQuant (see 'smoothing'), which takes AWQ's place: set method 'auto', 'gptq' "
            "or 'rtn'"
        )
    if step.symmetric is False:
        raise InvalidRecipeError(
            "int8_dynamic weights are symmetric, one scale per output channel (vLLM's int8 "
            "GEMM): leave 'symmetric' unset or true"
        )
    if step.embedding_bits != 8:
        raise InvalidRecipeError(
            "vllm artifacts keep the embedding table and lm_head in 16-bit float: leave "
            "embedding_bits at 8"
        )


def _check_gguf(step: Any, architecture: str | None) -> None:
    """What one GGUF file holds exactly (compressor/llm/gguf_sink.py): blocks of 32, int4 as
    Q4_1 (asymmetric, the default) or Q4_0, int8 as Q8_0 (symmetric only), tables Q8_0."""
    from compressor.llm.gguf_sink import ARCHITECTURES, BLOCK

    if architecture is not None and architecture not in ARCHITECTURES:
        raise InvalidRecipeError(
            f"the llama.cpp GGUF is written for {', '.join(ARCHITECTURES)}, not {architecture}: "
            "use target.runtime 'vllm' or 'onnxruntime-genai' for this model"
        )
    if step.group_size not in (None, BLOCK):
        raise InvalidRecipeError(
            f"llama.cpp's blocks hold {BLOCK} weights: leave group_size unset or set it to {BLOCK}"
        )
    if step.scheme == "int8_weight_only" and step.symmetric is False:
        raise InvalidRecipeError(
            "llama.cpp's 8-bit type (Q8_0) is symmetric: leave 'symmetric' unset or true"
        )
    if step.embedding_bits != 8:
        raise InvalidRecipeError(
            "llama.cpp artifacts store the embedding table and output head Q8_0: leave "
            "embedding_bits at 8"
        )


GIB = 1 << 30


def memory_bound(weight_bytes: int) -> int:
    """What a causal-LM job may take, its whole process tree summed: layer-by-layer work keeps
    one model's weights (measuring) plus a fixed part for torch, tokenizer and runtimes."""
    return 2 * GIB + int(1.5 * weight_bytes)


def check_memory_fits(inspection: dict[str, Any] | None, *, job_memory_bytes: int | None) -> None:
    facts = (inspection or {}).get("causal_lm")
    if not job_memory_bytes or not isinstance(facts, dict):
        return
    needed = memory_bound(int(facts["weight_bytes"]))
    if needed > job_memory_bytes:
        raise InvalidRecipeError(
            f"this model needs about {needed / GIB:.1f} GiB to compress (2 GiB + 1.5x its "
            f"{int(facts['weight_bytes']) / GIB:.2f} GiB of weights), more than a job may use "
            f"on these workers ({job_memory_bytes / GIB:.1f} GiB, MODELPRESS_JOB_MEMORY_BYTES)"
        )
