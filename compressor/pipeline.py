"""The one entry point: apply a recipe to a model for a target, and measure before and after."""

from __future__ import annotations

import inspect
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from compressor.formats.hf import (
    copy_side_files,
    inspect_hf_dir,
    load_hf_model,
    load_tokenizer,
    read_config,
)
from compressor.formats.onnx_io import export_onnx, onnx_parameter_stats
from compressor.inputs import EvalInputs, generated_token_inputs, text_inputs
from compressor.measure.fidelity import fidelity
from compressor.measure.runtime import measure_in_fresh_process
from compressor.measure.settings import MeasureSettings
from compressor.recipe import Recipe
from compressor.target import Target
from compressor.techniques.base import ModelState, Stage, StepContext, handler_for

Progress = Callable[[str, float], None]


@dataclass(frozen=True)
class CompressionResult:
    artifact_dir: Path
    artifact_format: str
    report: dict[str, Any]


def _input_names(model: torch.nn.Module, tokenizer: Any | None) -> list[str]:
    accepted = set(inspect.signature(model.forward).parameters)
    names = list(tokenizer.model_input_names) if tokenizer is not None else ["input_ids"]
    if "attention_mask" in accepted and "attention_mask" not in names:
        names.append("attention_mask")
    return [n for n in names if n in accepted]


def _eval_inputs(root: Path, model: torch.nn.Module, target: Target) -> EvalInputs:
    tokenizer = load_tokenizer(root)
    names = _input_names(model, tokenizer)
    if tokenizer is not None:
        return text_inputs(tokenizer, names, sequence_length=target.sequence_length)
    vocab = int(read_config(root).get("vocab_size", 1000))
    return generated_token_inputs(names, vocab_size=vocab, sequence_length=target.sequence_length)


def _torch_param_stats(module: torch.nn.Module) -> dict[str, Any]:
    params = list(module.parameters())
    dtypes: dict[str, int] = {}
    for p in params:
        dtypes[str(p.dtype).removeprefix("torch.")] = dtypes.get(str(p.dtype), 0) + p.numel()
    return {
        "parameters": sum(p.numel() for p in params),
        "nonzero_parameters": sum(int(torch.count_nonzero(p)) for p in params),
        "dtypes": dtypes,
    }


def _dir_bytes(path: Path, pattern: str) -> int:
    return sum(p.stat().st_size for p in path.glob(pattern))


def compress_hf_model(
    source_dir: Path,
    recipe: Recipe,
    *,
    target: Target,
    workdir: Path,
    settings: MeasureSettings | None = None,
    progress: Progress | None = None,
) -> CompressionResult:
    """Compress a Hugging Face model directory; the artifact folder is in ``result.artifact_dir``."""
    settings = settings or MeasureSettings()
    report_progress: Progress = progress or (lambda _phase, _f: None)
    recipe.check_target(target)
    workdir.mkdir(parents=True, exist_ok=True)

    report_progress("loading", 0.02)
    inspection = inspect_hf_dir(source_dir)
    model = load_hf_model(source_dir)
    inputs = _eval_inputs(source_dir, model, target)
    example = inputs.head(2)
    onnx_target = target.runtime == "onnxruntime"

    if onnx_target:
        report_progress("exporting original", 0.08)
        original_path = workdir / "original.onnx"
        export_onnx(model, example, original_path, output_name="output")
        original_stats = onnx_parameter_stats(original_path)
        original_bytes = original_path.stat().st_size
    else:
        original_path = source_dir
        original_stats = _torch_param_stats(model)
        original_bytes = inspection.weight_bytes

    state = ModelState(module=model, source_dir=source_dir, workdir=workdir)
    steps_report: list[dict[str, Any]] = []
    n_steps = len(recipe.steps)
    for index, step in enumerate(recipe.steps):
        handler = handler_for(step)
        if handler.stage is Stage.ONNX and state.onnx_path is None:
            report_progress("exporting", 0.15 + 0.5 * index / n_steps)
            state.onnx_path = workdir / "compressed_fp32.onnx"
            export_onnx(state.module, example, state.onnx_path, output_name="output")
        phase = f"step {index + 1}/{n_steps}: {step.technique}"
        base = 0.15 + 0.5 * index / n_steps

        def step_progress(fraction: float, phase: str = phase, base: float = base) -> None:
            report_progress(phase, base + 0.5 / n_steps * min(max(fraction, 0.0), 1.0))

        step_progress(0.0)
        ctx = StepContext(target=target, calibration=inputs, progress=step_progress)
        details = handler.apply(step, state, ctx)
        steps_report.append({"technique": step.technique, **details})

    report_progress("saving", 0.68)
    artifact_dir = workdir / "artifact"
    if artifact_dir.exists():
        shutil.rmtree(artifact_dir)
    artifact_dir.mkdir()
    if onnx_target:
        if state.onnx_path is None:
            state.onnx_path = workdir / "compressed_fp32.onnx"
            export_onnx(state.module, example, state.onnx_path, output_name="output")
        shutil.copy2(state.onnx_path, artifact_dir / "model.onnx")
        copy_side_files(source_dir, artifact_dir, include_config=True)
        compressed_path = artifact_dir / "model.onnx"
        compressed_stats = onnx_parameter_stats(compressed_path)
        compressed_bytes = compressed_path.stat().st_size
    else:
        state.module.save_pretrained(str(artifact_dir), safe_serialization=True)
        copy_side_files(source_dir, artifact_dir, include_config=False)
        compressed_path = artifact_dir
        compressed_stats = _torch_param_stats(state.module)
        compressed_bytes = _dir_bytes(artifact_dir, "*.safetensors")

    report_progress("measuring original", 0.72)
    before = measure_in_fresh_process(
        runtime=target.runtime,
        model_path=original_path,
        inputs=inputs,
        batch_size=target.batch_size,
        settings=settings,
    )
    report_progress("measuring compressed", 0.86)
    after = measure_in_fresh_process(
        runtime=target.runtime,
        model_path=compressed_path,
        inputs=inputs,
        batch_size=target.batch_size,
        settings=settings,
    )
    report = {
        "target": target.model_dump(),
        "measurement": {
            **settings.model_dump(exclude={"timeout_s"}),
            "sequence_length": target.sequence_length,
            "inputs": inputs.source,
            "fresh_process": True,
        },
        "original": {
            "format": inspection.as_dict()["format"],
            "runtime_format": "onnx" if onnx_target else "safetensors",
            "model_bytes": original_bytes,
            "upload_weight_bytes": inspection.weight_bytes,
            **original_stats,
            **before.metrics(),
        },
        "compressed": {
            "format": "onnx" if onnx_target else "huggingface",
            "model_bytes": compressed_bytes,
            **compressed_stats,
            **after.metrics(),
        },
        "fidelity": fidelity(
            before.outputs, after.outputs, attention_mask=inputs.tensors.get("attention_mask")
        ),
        "steps": steps_report,
    }
    report["compression_ratio"] = round(original_bytes / max(compressed_bytes, 1), 3)
    report["speedup_p50"] = round(before.latency_p50_ms / max(after.latency_p50_ms, 1e-9), 3)
    report_progress("done", 1.0)
    return CompressionResult(
        artifact_dir=artifact_dir,
        artifact_format="onnx" if onnx_target else "huggingface",
        report=report,
    )
