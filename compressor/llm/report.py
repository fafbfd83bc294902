"""The figures an LLM user reads, as the ``llm`` section of the job's report."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class PerplexityFigures(_Strict):
    original: float
    compressed: float
    relative_increase: float = Field(description="compressed / original - 1")
    tokens: int
    window: int
    text: str = Field(description="Which text: the job's eval set or the default held-out text.")
    standard_error: float = Field(
        description="Standard error of the compressed model's mean log-likelihood across "
        "windows: differences in log-perplexity below about twice this are within noise."
    )


class GenerationFigures(_Strict):
    prompts: int
    new_tokens: int
    agreed_tokens: list[int] = Field(
        description="Per prompt: greedy tokens equal to the original's before the first divergence."
    )
    agreed_mean: float
    fully_agreed: int


class DecodeFigures(_Strict):
    runtime: str = Field(description="What generated: onnxruntime-genai, or transformers.")
    device: str
    new_tokens: int
    ttft_ms_original: float
    ttft_ms_compressed: float
    tokens_per_s_original: float
    tokens_per_s_compressed: float
    note: str


class MemoryFigures(_Strict):
    peak_bytes: int = Field(description="Peak of the job's process tree, summed.")
    source: str = Field(description="pss (shared pages counted once) or rss.")
    bound_bytes: int = Field(description="2 GiB + 1.5x the model's weight bytes.")
    within_bound: bool


class CandidateFigures(_Strict):
    method: str
    held_out_perplexity: float
    seconds: float


class ScalingFigures(_Strict):
    """AWQ's or SmoothQuant's per-channel scalings (compressor/llm/awq.py)."""

    pairs: int = Field(description="Norm/linear -> linears pairs a scale was searched for.")
    scaled: int = Field(description="Pairs scaled (alpha > 0); the rest round as they were.")
    undone: int = Field(
        description="Scalings taken back because they changed the float layer's output."
    )
    median_alpha: float
    median_error_ratio: float = Field(
        description="Median over pairs of the rounded linears' output error on the "
        "calibration text, scaled over unscaled (below 1: the scaling helped)."
    )


class LLMReport(_Strict):
    method: str
    bits: int
    group_sizes: list[int]
    symmetric: bool
    embeddings: str = Field(description="How the embedding table and lm_head are stored.")
    calibration: str
    candidates: list[CandidateFigures]
    perplexity: PerplexityFigures
    generation: GenerationFigures
    decode: DecodeFigures
    memory: MemoryFigures | None = None
    awq: ScalingFigures | None = Field(None, description="When the chosen method is awq.")
    activations: str | None = Field(
        None, description="W8A8 (int8_dynamic): how activations are quantized at run time."
    )
    smoothing: ScalingFigures | None = Field(
        None, description="W8A8 (int8_dynamic): SmoothQuant's migration of activation outliers."
    )
    sparsity: str | None = Field(None, description="nm_sparsity: the pattern and its method.")
    kept_8bit: list[str] | None = Field(
        None, description="keep_8bit: the linears at 8 bits in an int4 model, by full name."
    )
