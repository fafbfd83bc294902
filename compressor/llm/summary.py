"""The job report of a causal LM: the common report's fields filled the way LLM figures read,
plus its ``llm`` section. Latency is decode time per token at batch 1 in the target runtime."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import torch

from compressor.measure.fidelity import fidelity as output_fidelity
from compressor.report import (
    CalibrationInputs,
    CompressedModel,
    CompressionReport,
    Fidelity,
    FidelityInputs,
    Measurement,
    OriginalModel,
    PackedArchive,
    RanOn,
    StepReport,
)

if TYPE_CHECKING:
    from compressor.llm.pipeline import LLMResult
    from compressor.target import Target

# Beyond these an LLM user notices: perplexity up by a tenth, continuations that part early.
WARN_PERPLEXITY_INCREASE = 0.10
WARN_AGREED_FRACTION = 0.5


def _runtime_figures(tokens_per_s: float, peak: int) -> dict[str, Any]:
    per_token = 1000.0 / max(tokens_per_s, 1e-9)
    return {
        "latency_p50_ms": round(per_token, 4),
        "latency_p95_ms": round(per_token, 4),
        "throughput_per_s": round(tokens_per_s, 3),
        "peak_memory_bytes": peak,
        "batch_size": 1,
    }


def llm_compression_report(
    result: LLMResult,
    *,
    target: Target,
    inspection: dict[str, Any],
    step: dict[str, Any],
    compressed_bytes: int,
    compressed_stats: dict[str, Any],
) -> CompressionReport:
    llm, figures = result.llm, result.figures
    before, after = figures["before"], figures["after"]
    tokens = int(figures["fidelity_tokens"])
    decode = llm.decode
    original = OriginalModel(
        format="huggingface",
        architecture=inspection.get("architecture"),
        runtime_format="safetensors",
        model_bytes=int(inspection["weight_bytes"]),
        upload_weight_bytes=int(inspection["weight_bytes"]),
        **before.stats,
        **_runtime_figures(decode.tokens_per_s_original, figures["peak_original"]),
    )
    archive = result.archive
    compressed = CompressedModel(
        format=result.artifact_format.value,
        model_bytes=compressed_bytes,
        archive=(
            PackedArchive(format=archive.format, path=archive.path.name, bytes=archive.bytes)
            if archive is not None
            else None
        ),
        **compressed_stats,
        **_runtime_figures(decode.tokens_per_s_compressed, figures["peak_compressed"]),
    )
    fid = Fidelity(**output_fidelity(before.logits, after.logits))
    return CompressionReport(
        target=target,
        measurement=_measurement(llm, tokens),
        original=original,
        compressed=compressed,
        fidelity=fid,
        steps=[StepReport.model_validate(step)],
        compression_ratio=round(original.model_bytes / max(compressed_bytes, 1), 3),
        archive_compression_ratio=(
            round(original.model_bytes / max(archive.bytes, 1), 3) if archive else None
        ),
        speedup_p50=round(
            decode.tokens_per_s_compressed / max(decode.tokens_per_s_original, 1e-9), 3
        ),
        warnings=llm_warnings(result, original=original, compressed=compressed),
        ran_on=_ran_on(target, decode.runtime),
        llm=llm,
    )


def _measurement(llm: Any, tokens: int) -> Measurement:
    return Measurement(
        threads=torch.get_num_threads(),
        warmup=1,
        iterations=3,
        sequence_length=llm.perplexity.window,
        inputs=llm.perplexity.text,
        labelled=False,
        fidelity_inputs=FidelityInputs(
            source="eval text",
            description=f"next-token logits at the first {tokens} tokens of {llm.perplexity.text}",
            rows=tokens,
            labelled=False,
            held_out=True,
            disjoint_from=["calibration"],
            note="perplexity is read on the whole eval text, fidelity on its first tokens",
            used_for=["fidelity", "perplexity"],
        ),
        calibration_inputs=CalibrationInputs(
            source="text", description=llm.calibration, rows=_blocks(llm.calibration)
        ),
        training_data=None,
        fresh_process=False,
    )


def _blocks(description: str) -> int:
    words = description.split(": ")[-1].split()
    return int(words[0]) if words and words[0].isdigit() else 0


def _ran_on(target: Target, runtime: str) -> RanOn:
    import onnxruntime

    genai = runtime == "onnxruntime-genai"
    return RanOn(
        device="cpu",
        gpu_name=None,
        # compressor/report.py's RanOn does not list llama.cpp: its figures come from torch
        runtime="torch" if target.runtime == "llama.cpp" else target.runtime,
        provider="CPUExecutionProvider" if genai else None,
        timer="wall clock",
        training_device="cpu",
        torch_threads=torch.get_num_threads(),
        ort_intra_op_threads=None,
        torch_version=torch.__version__,
        onnxruntime_version=onnxruntime.__version__ if genai else None,
    )


def llm_warnings(
    result: LLMResult, *, original: OriginalModel, compressed: CompressedModel
) -> list[str]:
    llm = result.llm
    found = []
    decode = llm.decode
    if decode.tokens_per_s_compressed < decode.tokens_per_s_original:
        found.append(
            f"decodes slower than the original on {decode.runtime} ({decode.device}, batch 1): "
            f"{decode.tokens_per_s_compressed:.1f} vs {decode.tokens_per_s_original:.1f} tokens/s"
        )
    if compressed.model_bytes > original.model_bytes:
        found.append(
            f"larger than the original: {compressed.model_bytes} vs {original.model_bytes} bytes"
        )
    ppl = llm.perplexity
    if ppl.relative_increase > WARN_PERPLEXITY_INCREASE:
        found.append(
            f"perplexity rose by {ppl.relative_increase * 100:.1f}% ({ppl.original:.3f} -> "
            f"{ppl.compressed:.3f}) on {ppl.text}"
        )
    gen = llm.generation
    if gen.agreed_mean < WARN_AGREED_FRACTION * gen.new_tokens:
        found.append(
            f"greedy continuations part from the original's early: {gen.agreed_mean:.1f} of "
            f"{gen.new_tokens} tokens agree on average over {gen.prompts} prompts"
        )
    memory = llm.memory
    if memory is not None and not memory.within_bound:
        found.append(
            f"the job's memory peaked at {memory.peak_bytes} bytes, above its bound of "
            f"{memory.bound_bytes} (2 GiB + 1.5x the weights)"
        )
    return found
