"""Quantize a causal LM with each candidate method and keep the one that holds perplexity best.

Every candidate walks the model layer by layer into a compressed-tensors folder (the format
transformers and vLLM load); for ONNX Runtime GenAI the same walk also writes the GPTQ-layout
checkpoint its model builder takes, and for llama.cpp the GGUF file, so the integers the user
gets are the ones judged here.
"""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from compressor.llm.ct_sink import CompressedTensorsSink, DequantizedSink
from compressor.llm.gguf_sink import GGUF_FILE, GgufJudgeSink, GgufSink
from compressor.llm.heap import trim
from compressor.llm.layerwise import WalkSummary, quantize_causal_lm
from compressor.llm.measure import perplexity
from compressor.llm.quantized import QuantizedWeight, WeightSink
from compressor.llm.report import CandidateFigures


@dataclass(frozen=True)
class Candidate:
    method: str
    folder: Path  # compressed-tensors (vllm), or dequantized float weights (GenAI, llama.cpp)
    checkpoint: Path | None  # GPTQ layout, for the GenAI builder
    summary: WalkSummary
    figures: CandidateFigures
    gguf: Path | None = None  # the llama.cpp file
    refit_blocks: int | None = None  # walked again on this many blocks once chosen


class _Tee:
    """One walk, two formats."""

    def __init__(self, *sinks: WeightSink) -> None:
        self.sinks = sinks

    def add_quantized(
        self, name: str, weight: QuantizedWeight, bias: torch.Tensor | None = None
    ) -> None:
        for sink in self.sinks:
            sink.add_quantized(name, weight, bias)

    def add_float(self, name: str, tensor: torch.Tensor) -> None:
        for sink in self.sinks:
            sink.add_float(name, tensor)

    def close(self, config: dict[str, Any], *, tied_embeddings: bool) -> None:
        for sink in self.sinks:
            sink.close(config, tied_embeddings=tied_embeddings)


# safetensors' names for the float dtypes an upload may carry
_UPLOAD_DTYPES = {"BF16": torch.bfloat16, "F16": torch.float16}


def measuring_dtype(upload_dtype: str | None) -> torch.dtype:
    """The dtype a causal LM is judged and timed in: the upload's own when it is 16-bit (what a
    runtime serves it in, and a float32 copy of a 16-bit model is twice its bytes: over the
    job's memory bound of 1.5x), else float32."""
    return _UPLOAD_DTYPES.get(str(upload_dtype).upper(), torch.float32)


def load_causal_lm(folder: Path, dtype: torch.dtype = torch.float32) -> Any:
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(str(folder), dtype=dtype)
    return model.eval()


def run_candidate(
    source_dir: Path,
    method: str,
    *,
    workdir: Path,
    bits: int,
    group_size: int | None,
    symmetric: bool,
    calibration: torch.Tensor,
    held_out: torch.Tensor,
    with_checkpoint: bool,
    progress: Callable[[float], None],
    head_bits: int | None = None,
    with_gguf: bool = False,
    w8a8_smoothing: float | None = None,
    sparsity: tuple[int, int] | None = None,
    dtype: torch.dtype = torch.float32,
    keep_8bit: tuple[str, ...] = (),
) -> Candidate:
    """``dtype``: what the candidate is judged in (measuring_dtype)."""
    from compressor.llm.gptq_checkpoint_sink import GptqCheckpointSink

    started = time.monotonic()
    folder = workdir / f"candidate-{method}"
    shutil.rmtree(folder, ignore_errors=True)
    checkpoint = folder / "gptq" if with_checkpoint else None
    gguf = folder / "gguf" / GGUF_FILE if with_gguf else None
    sink: WeightSink
    if gguf is not None:  # judged on what the GGUF file dequantizes to (fp16 d and m included)
        compressed = folder / "dequantized"
        config = json.loads((source_dir / "config.json").read_text())
        sink = _Tee(
            GgufJudgeSink(compressed, dtype=dtype),
            GgufSink(gguf.parent, config=config, tokenizer_dir=source_dir),
        )
    elif checkpoint is None:
        compressed = folder / "compressed-tensors"
        # W8A8 is judged as transformers loads it: its compressed-tensors forward rounds each
        # token's activations to int8, as vLLM's int8 GEMM does
        sink = CompressedTensorsSink(
            compressed,
            dynamic_activations=w8a8_smoothing is not None,
            sparsity=f"{sparsity[0]}:{sparsity[1]}" if sparsity else None,
        )
    else:  # judged on its dequantized weights; the GenAI folder is built for the winner only
        compressed = folder / "dequantized"
        sink = _Tee(DequantizedSink(compressed, dtype=dtype), GptqCheckpointSink(checkpoint))
    summary = quantize_causal_lm(
        source_dir,
        sink,
        bits=bits,
        method=method,  # type: ignore[arg-type]
        calibration=calibration,
        group_size=group_size,
        symmetric=symmetric,
        progress=progress,
        head_bits=head_bits,
        w8a8_smoothing=w8a8_smoothing,
        sparsity=sparsity,
        keep_8bit=keep_8bit,
    )
    model = load_causal_lm(compressed, dtype)
    held = perplexity(model, held_out, window=held_out.shape[-1])
    del model
    trim()  # else the judged model's 1x weights stay in the job's memory (compressor/llm/heap.py)
    figures = CandidateFigures(
        method=method,
        held_out_perplexity=round(held.ppl, 4),
        seconds=round(time.monotonic() - started, 2),
    )
    return Candidate(method, compressed, checkpoint, summary, figures, gguf=gguf)


def reads_calibration(method: str, *, w8a8: bool) -> bool:
    """Whether the walk's result depends on the calibration text: round to nearest does not,
    unless SmoothQuant's scaling (W8A8) reads the activations first."""
    return method != "rtn" or w8a8


def best(candidates: list[Candidate]) -> Candidate:
    """Lowest held-out perplexity; on a tie the first (cheaper) method."""
    return min(candidates, key=lambda c: c.figures.held_out_perplexity)
