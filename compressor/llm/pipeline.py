"""A causal LM through a weight-only quantization step, for an LLM runtime, with the figures
LLM users read (compressor/pipeline.py hands causal LMs on vllm / onnxruntime-genai / llama.cpp
here).

Memory follows the largest decoder layer while quantizing; the measuring loads one model at a
time, decode timing included (each model loaded for its turn)."""

from __future__ import annotations

import shutil
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import torch

from compressor.artifacts import ArtifactFormat, PackedFile
from compressor.errors import InvalidModelError
from compressor.formats.hf import copy_side_files, load_tokenizer
from compressor.inputs import InvalidDatasetError
from compressor.llm import awq
from compressor.llm import evaluate as ev
from compressor.llm.candidates import (
    Candidate,
    best,
    load_causal_lm,
    measuring_dtype,
    reads_calibration,
    run_candidate,
)
from compressor.llm.gguf_sink import BLOCK as GGUF_BLOCK
from compressor.llm.heap import trim
from compressor.llm.layerwise import HEAD_GROUP
from compressor.llm.report import LLMReport, MemoryFigures
from compressor.llm.rules import memory_bound
from compressor.llm.texts import (
    default_calibration_texts,
    default_eval_text,
    default_prompts,
    split_held_out,
    token_blocks,
)
from compressor.measure.memory import PeakMemory, process_tree_pss

Progress = Callable[[str, float], None]

CALIBRATION_SEQ = 512
CALIBRATION_BLOCKS = 64
EVAL_TOKENS = 8192
EVAL_WINDOW = 512
AUTO_METHODS = ("rtn", "gptq", "awq")  # each a full walk, judged on held-out perplexity
W8A8_AUTO_METHODS = ("rtn", "gptq")  # SmoothQuant's scaling takes AWQ's place
# nm_sparsity: both calibration-aware methods, judged alike (compressor/llm/sparsity.py)
SPARSITY_METHODS = ("sparsegpt", "wanda")
W8A8_ACTIVATIONS = (
    "int8 per token, symmetric, scaled at run time (compressed-tensors int-quantized; vLLM's "
    "int8 GEMM); weights int8 per output channel. Judged through transformers, whose "
    "compressed-tensors forward rounds the activations the same way"
)
MIN_CALIBRATION_TOKENS = 128

# llama.cpp is not installed on the workers: its decode speed is not measured here.
LLAMA_CPP_DECODE_NOTE = (
    "llama.cpp artifact timed with transformers on CPU on the float weights its GGUF "
    "dequantizes to: no speedup is expected here; llama.cpp's Q4/Q8 kernels are not timed"
)


@dataclass(frozen=True)
class LLMResult:
    artifact_dir: Path
    artifact_format: ArtifactFormat
    figures: dict[str, Any]  # what compressor/report.py needs to build the report
    llm: LLMReport
    archive: PackedFile | None


@dataclass(frozen=True)
class _Texts:
    calibration: torch.Tensor
    held_out: torch.Tensor
    calibration_source: str
    eval_ids: torch.Tensor
    eval_source: str
    window: int
    dtype: torch.dtype  # what both models are judged and timed in (measuring_dtype)


def _texts(
    tokenizer: Any,
    *,
    max_positions: int | None,
    calibration_texts: Sequence[str] | None,
    eval_texts: Sequence[str] | None,
    dtype: torch.dtype,
) -> _Texts:
    calib = list(calibration_texts) if calibration_texts else default_calibration_texts()
    blocks = calibration_blocks(tokenizer, calib, max_positions=max_positions)
    seq = blocks.shape[1]
    calibration, held_out = split_held_out(blocks)
    text = "\n\n".join(eval_texts) if eval_texts else default_eval_text()
    ids = torch.tensor(tokenizer(text)["input_ids"][:EVAL_TOKENS], dtype=torch.long)
    return _Texts(
        calibration=calibration,
        held_out=held_out,
        calibration_source=(
            f"the job's calibration set ({len(calib)} texts)"
            if calibration_texts
            else "modelpress's default English calibration text"
        )
        + f": {calibration.shape[0]} blocks of {seq} tokens, {held_out.shape[0]} held out",
        eval_ids=ids,
        eval_source=(
            "the job's eval set" if eval_texts else "modelpress's default held-out English text"
        )
        + f" ({ids.numel()} tokens; never used for calibration); both models run in "
        + str(dtype).removeprefix("torch.")
        + (", the upload's dtype" if dtype != torch.float32 else ""),
        window=min(EVAL_WINDOW, max_positions or EVAL_WINDOW),
        dtype=dtype,
    )


def calibration_blocks(
    tokenizer: Any, texts: list[str], *, max_positions: int | None
) -> torch.Tensor:
    """int64 (n, seq): the token blocks a job calibrates on (a quarter of them later held out to
    choose the method); the bench hands the same blocks to the peers."""
    seq = _block_length(tokenizer, texts, max_positions)
    return token_blocks(tokenizer, texts, seq_len=seq, max_blocks=CALIBRATION_BLOCKS)


def _block_length(tokenizer: Any, texts: list[str], max_positions: int | None) -> int:
    """CALIBRATION_SEQ tokens a block, shorter when the text is short: at least 8 blocks, so a
    quarter can be held out to choose the method."""
    total = sum(len(tokenizer(t, add_special_tokens=False)["input_ids"]) + 1 for t in texts)
    if total < MIN_CALIBRATION_TOKENS:
        raise InvalidDatasetError(
            f"the calibration text makes {total} tokens; a causal LM needs at least "
            f"{MIN_CALIBRATION_TOKENS} (a few paragraphs) to calibrate and hold some out"
        )
    return min(CALIBRATION_SEQ, max_positions or CALIBRATION_SEQ, total // 8)


def compress_causal_lm(
    source_dir: Path,
    step: Any,
    *,
    runtime: str,
    inspection: dict[str, Any],
    workdir: Path,
    progress: Progress,
    calibration_texts: Sequence[str] | None = None,
    eval_texts: Sequence[str] | None = None,
    decode_budget_s: float = ev.DECODE_BUDGET_S,
) -> LLMResult:
    """``step``: the recipe's one QuantizationConfig (compressor/llm/rules.py checked it).
    ``decode_budget_s``: decode timing rounds after the first stop there."""
    with PeakMemory() as memory:
        tokenizer = load_tokenizer(source_dir)
        if tokenizer is None:
            raise InvalidModelError(
                "a causal LM upload needs its tokenizer files (tokenizer.json and "
                "tokenizer_config.json): perplexity and generation are read through them"
            )
        facts = inspection["causal_lm"]
        texts = _texts(
            tokenizer,
            max_positions=facts.get("max_position_embeddings"),
            calibration_texts=calibration_texts,
            eval_texts=eval_texts,
            dtype=measuring_dtype(facts.get("dtype")),
        )
        chosen, candidates = _quantize(source_dir, step, runtime, texts, workdir, progress)
        artifact_dir, artifact_format = _artifact(
            source_dir, chosen, runtime, workdir, progress,
            embedding_bits=getattr(step, "embedding_bits", 8),
        )  # fmt: skip
        figures, llm = _measure(
            source_dir, artifact_dir, chosen, candidates, step, runtime, texts, tokenizer,
            workdir, progress, decode_budget_s,
        )  # fmt: skip
        bound = memory_bound(int(facts["weight_bytes"]))
        llm.memory = MemoryFigures(
            peak_bytes=memory.peak_bytes,
            source=memory.source,
            bound_bytes=bound,
            within_bound=memory.peak_bytes <= bound,
        )
    # Not packed here: compress_model packs the folder once, with report.json inside.
    return LLMResult(artifact_dir, artifact_format, figures, llm, archive=None)


def _quantize(
    source_dir: Path,
    step: Any,
    runtime: str,
    texts: _Texts,
    workdir: Path,
    progress: Progress,
) -> tuple[Candidate, list[Candidate]]:
    sparse = _is_sparsity(step)
    w8a8 = not sparse and step.scheme == "int8_dynamic"
    if sparse:
        methods = list(SPARSITY_METHODS)
    else:
        auto = W8A8_AUTO_METHODS if w8a8 else AUTO_METHODS
        methods = list(auto) if step.method == "auto" else [step.method]
    refits = len(methods) > 1  # a choice was made: its winner is walked again on every block
    walks = len(methods) + refits
    done: list[Candidate] = []

    def walk(method: str, index: int, calibration: torch.Tensor) -> Candidate:
        base = 0.1 + 0.5 * index / walks

        def walked(fraction: float) -> None:
            progress(f"{'pruning' if sparse else 'quantizing'} ({method})",
                     base + 0.5 / walks * fraction)  # fmt: skip

        return run_candidate(
            source_dir,
            method,
            workdir=workdir,
            bits=16 if sparse else 4 if step.scheme == "int4_weight_only" else 8,
            group_size=None
            if sparse
            else GGUF_BLOCK
            if runtime == "llama.cpp"
            else step.group_size,
            symmetric=_symmetric(step, runtime),
            calibration=calibration,
            held_out=texts.held_out,
            with_checkpoint=runtime == "onnxruntime-genai",
            with_gguf=runtime == "llama.cpp",
            progress=walked,
            head_bits=_head_bits(step, runtime),
            w8a8_smoothing=step.smoothing if w8a8 else None,
            sparsity=(step.n, step.m) if sparse else None,
            dtype=texts.dtype,
            keep_8bit=() if sparse else step.keep_8bit,
        )

    for index, method in enumerate(methods):
        done.append(walk(method, index, texts.calibration))
    chosen = best(done)
    if refits and reads_calibration(chosen.method, w8a8=w8a8):
        # The held-out quarter has chosen the method; as calibration it is worth more than as a
        # judge now. The choice's figures stay those measured on held-out blocks.
        everything = torch.cat([texts.calibration, texts.held_out])
        refit = walk(chosen.method, len(methods), everything)
        chosen = replace(refit, figures=chosen.figures, refit_blocks=everything.shape[0])
    return chosen, done


def _is_sparsity(step: Any) -> bool:
    return bool(step.technique == "nm_sparsity")


def _head_bits(step: Any, runtime: str) -> int | None:
    """At 4 bits the LM head is quantized in the walk (GPTQ on the final norm's outputs, judged
    with the candidate); at 8 the GenAI builder's RTN costs nothing measurable (SmolLM2-135M:
    30.87 against 30.88 with the head in float), so the builder keeps doing it. vLLM's format
    keeps the head in float."""
    if _is_sparsity(step):
        return None
    return 4 if runtime == "onnxruntime-genai" and step.embedding_bits == 4 else None


def _symmetric(step: Any, runtime: str) -> bool:
    """The runtime's default: llama.cpp int4 asymmetric (Q4_1, which loses less than Q4_0),
    int8 symmetric (Q8_0: no asymmetric 8-bit type)."""
    if _is_sparsity(step):
        return False  # no grid
    if step.scheme == "int8_dynamic":
        return True  # W8A8: the int8 GEMM reads symmetric weights
    if step.symmetric is not None:
        return bool(step.symmetric)
    if runtime == "llama.cpp":
        return step.scheme == "int8_weight_only"
    return runtime == "vllm"


def _artifact(
    source_dir: Path,
    chosen: Candidate,
    runtime: str,
    workdir: Path,
    progress: Progress,
    *,
    embedding_bits: int,
) -> tuple[Path, ArtifactFormat]:
    progress("saving", 0.62)
    artifact_dir = workdir / "artifact"
    shutil.rmtree(artifact_dir, ignore_errors=True)
    if runtime == "llama.cpp":  # one file, tokenizer inside: llama.cpp needs nothing beside it
        assert chosen.gguf is not None
        artifact_dir.mkdir(parents=True)
        shutil.copy2(chosen.gguf, artifact_dir / chosen.gguf.name)
        return artifact_dir, ArtifactFormat.GGUF
    if runtime == "vllm":
        shutil.copytree(chosen.folder, artifact_dir)
        copy_side_files(source_dir, artifact_dir, include_config=False)
        return artifact_dir, ArtifactFormat.COMPRESSED_TENSORS
    from compressor.llm.genai import build_genai_folder

    assert chosen.checkpoint is not None
    copy_side_files(source_dir, chosen.checkpoint, include_config=False)
    build_genai_folder(
        chosen.checkpoint,
        artifact_dir,
        cache_dir=workdir / "genai-cache",
        embedding_bits=embedding_bits,
    )
    return artifact_dir, ArtifactFormat.ONNXRUNTIME_GENAI


def _measure(
    source_dir: Path,
    artifact_dir: Path,
    chosen: Candidate,
    candidates: list[Candidate],
    step: Any,
    runtime: str,
    texts: _Texts,
    tokenizer: Any,
    workdir: Path,
    progress: Progress,
    decode_budget_s: float,
) -> tuple[dict[str, Any], LLMReport]:
    prompts = default_prompts()
    progress("measuring original", 0.7)
    original = load_causal_lm(source_dir, texts.dtype)
    before = ev.evaluate(
        original, tokenizer, eval_ids=texts.eval_ids, prompts=prompts, window=texts.window
    )
    torch_runtime = runtime in ("vllm", "llama.cpp")
    if torch_runtime:  # the first decode round, while the model is loaded anyway
        speed_original, seconds_original = ev.time_decode(
            original, tokenizer, prompts[0], budget_s=decode_budget_s
        )
    peak_original = process_tree_pss()
    del original  # one model in memory at a time: the job's memory bound is 1.5x the weights
    trim()
    progress("measuring compressed", 0.8)
    if torch_runtime:  # llama.cpp: the float model its GGUF dequantizes to
        compressed = load_causal_lm(chosen.folder, texts.dtype)
        after = ev.evaluate(
            compressed, tokenizer, eval_ids=texts.eval_ids, prompts=prompts, window=texts.window
        )
        speed_compressed, seconds_compressed = ev.time_decode(
            compressed, tokenizer, prompts[0], budget_s=decode_budget_s
        )
        peak_compressed = process_tree_pss()
        del compressed
        trim()
        progress("timing decode", 0.88)
        first = ev.FirstRound(
            speed_original, speed_compressed, seconds_original + seconds_compressed
        )
        decode = ev.decode_in_torch(
            lambda: load_causal_lm(source_dir, texts.dtype),
            lambda: load_causal_lm(chosen.folder, texts.dtype),
            tokenizer, prompts[0], first, budget_s=decode_budget_s,
        )  # fmt: skip
        if runtime == "llama.cpp":
            decode = decode.model_copy(update={"note": LLAMA_CPP_DECODE_NOTE})
    else:
        after = ev.evaluate_genai(
            artifact_dir, tokenizer, eval_ids=texts.eval_ids, prompts=prompts, window=texts.window
        )
        peak_compressed = process_tree_pss()
        progress("timing decode", 0.88)
        decode = _genai_decode(source_dir, artifact_dir, prompts[0], workdir)
    llm = _report(chosen, candidates, step, runtime, texts, before, after, decode)
    figures = {
        "before": before,
        "after": after,
        "fidelity_tokens": before.logits.shape[0],
        "peak_original": peak_original,
        "peak_compressed": peak_compressed,
    }
    return figures, llm


def _report(
    chosen: Candidate,
    candidates: list[Candidate],
    step: Any,
    runtime: str,
    texts: _Texts,
    before: Any,
    after: Any,
    decode: Any,
) -> LLMReport:
    sparse = _is_sparsity(step)
    w8a8 = not sparse and step.scheme == "int8_dynamic"
    return LLMReport(
        method=chosen.method,
        bits=chosen.summary.bits,
        group_sizes=[] if sparse else sorted({r.group_size for r in chosen.summary.records}),
        symmetric=_symmetric(step, runtime),
        embeddings=_embeddings_note(runtime, getattr(step, "embedding_bits", 8)),
        calibration=texts.calibration_source
        + (
            f"; the chosen method ({chosen.method}) walked again on all {chosen.refit_blocks} "
            "blocks, the held-out ones included, once they had chosen it"
            if chosen.refit_blocks
            else ""
        ),
        candidates=[c.figures for c in candidates],
        perplexity=ev.perplexity_figures(
            before.ppl, after.ppl, window=texts.window, text=texts.eval_source
        ),
        generation=ev.generation_figures(before.greedy, after.greedy),
        decode=decode,
        awq=awq.figures(chosen.summary.scales) if chosen.method == "awq" else None,
        activations=W8A8_ACTIVATIONS if w8a8 else None,
        smoothing=awq.figures(chosen.summary.scales) if w8a8 else None,
        sparsity=_sparsity_note(step, chosen) if sparse else None,
        kept_8bit=chosen.summary.kept_8bit() or None,
    )


def _genai_decode(source_dir: Path, artifact_dir: Path, prompt: str, workdir: Path) -> Any:
    """Decode speed against the builder's fp32 export of the upload, in the same runtime."""
    from compressor.llm.genai import build_genai_original

    original_dir = workdir / "original-genai"
    build_genai_original(source_dir, original_dir, cache_dir=workdir / "genai-cache")
    decode = ev.decode_in_genai(original_dir, artifact_dir, prompt)
    shutil.rmtree(original_dir, ignore_errors=True)
    return decode


def artifact_weights(
    folder: Path, artifact_format: ArtifactFormat
) -> tuple[int, dict[str, Any] | None]:
    """Bytes of the weights the runtime loads, and the ONNX graph's parameter counts (None for
    a compressed-tensors directory or a GGUF file: their logical counts are the loaded
    model's). A GGUF file's bytes include its tokenizer (a few MB for a 50k vocabulary)."""
    if artifact_format == ArtifactFormat.COMPRESSED_TENSORS:
        return sum(p.stat().st_size for p in folder.glob("*.safetensors")), None
    if artifact_format == ArtifactFormat.GGUF:
        return sum(p.stat().st_size for p in folder.glob("*.gguf")), None
    from compressor.formats.onnx_io import onnx_parameter_stats

    files = [p for p in folder.iterdir() if p.suffix in (".onnx", ".data")]
    graph = next(p for p in files if p.suffix == ".onnx")
    return sum(p.stat().st_size for p in files), onnx_parameter_stats(graph)


def _sparsity_note(step: Any, chosen: Candidate) -> str:
    errors = [r.relative_error for r in chosen.summary.records if r.relative_error is not None]
    median = float(torch.tensor(errors or [0.0]).median())
    return (
        f"{step.n}:{step.m} on every decoder linear ({1 - step.n / step.m:.0%} of their weights "
        f"zero), by {chosen.method}; median relative output error per linear on the calibration "
        f"text {median:.4f}; weights stored dense in 16-bit float with the pattern in place "
        "(compressed-tensors sparsity_config, format dense)"
    )


def _embeddings_note(runtime: str, bits: int) -> str:
    if runtime == "llama.cpp":
        return (
            "embedding table and output head stored Q8_0 (blocks of 32, llama.cpp's reference "
            "round to nearest), norms F32; a tied table is stored once as token_embd"
        )
    if runtime == "vllm":
        return (
            "embedding table and lm_head kept in 16-bit float: vLLM's compressed-tensors "
            "loader serves quantized Linear layers only (a tied table stays tied)"
        )
    how = (
        f"by the same method as the layers, groups of {HEAD_GROUP}"
        if bits == 4
        else "round to nearest, by the ONNX Runtime GenAI builder"
    )
    return (
        f"lm_head {bits}-bit ({how}); a tied embedding reads the same table, an untied one is "
        "stored at the same bits (compressor/llm/genai.py)"
    )
