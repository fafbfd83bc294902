"""The one entry point: apply a recipe to a model for a target, and measure before and after."""

from __future__ import annotations

import copy
import shutil
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from compressor.datasets import tokenize_texts
from compressor.errors import InvalidModelError, UnsupportedModelError
from compressor.formats.detect import detect_kind
from compressor.formats.hf import copy_side_files
from compressor.formats.onnx_io import onnx_file_bytes, onnx_parameter_stats, save_onnx_artifact
from compressor.inputs import LABELS, EvalInputs, InputPlan, inputs_from_arrays, plan_inputs
from compressor.loaders import (
    PACK_LIMIT_BYTES,
    SourceModel,
    check_recipe_for_kind,
    load_source,
    pack_artifact,
)
from compressor.measure.fidelity import fidelity
from compressor.measure.runtime import measure_in_fresh_process
from compressor.measure.settings import MeasureSettings
from compressor.recipe import Recipe
from compressor.target import Target
from compressor.techniques.base import ModelState, Stage, StepContext, handler_for

Progress = Callable[[str, float], None]
Arrays = dict[str, np.ndarray]

# Every figure of the report that runs the models reads the measurement inputs.
MEASURED_ON_THESE = ("fidelity", "accuracy", "latency")


@dataclass(frozen=True)
class CompressionResult:
    artifact_dir: Path
    artifact_format: str
    report: dict[str, Any]


def _torch_param_stats(module: torch.nn.Module) -> dict[str, Any]:
    params = list(module.parameters())
    dtypes: dict[str, int] = {}
    for p in params:
        key = str(p.dtype).removeprefix("torch.")
        dtypes[key] = dtypes.get(key, 0) + p.numel()
    return {
        "parameters": sum(p.numel() for p in params),
        "nonzero_parameters": sum(int(torch.count_nonzero(p)) for p in params),
        "dtypes": dtypes,
    }


def _step_context(
    target: Target,
    calibration: EvalInputs,
    progress: Callable[[float], None],
    *,
    train: EvalInputs | None,
    texts: Sequence[str] | None,
    original: Callable[[], Any] | None,
    student: Callable[[], Any] | None = None,
) -> StepContext:
    return StepContext(
        target=target,
        calibration=calibration,
        progress=progress,
        train=train,
        texts=texts,
        original=original,
        student=student,
    )


def _train_inputs(source: SourceModel, train_data: Arrays | None) -> EvalInputs | None:
    if train_data is None:
        return None
    inputs, labels = inputs_from_arrays(train_data, source.input_specs, role="training")
    tensors = dict(inputs.tensors)
    if labels is not None:
        tensors[LABELS] = labels
    return EvalInputs(tensors, inputs.source)


def _texts_as_inputs(
    source: SourceModel, texts: Sequence[str] | None, target: Target
) -> EvalInputs | None:
    """Training sentences encoded as the measurement encodes text, so rows can be compared."""
    if not texts or source.tokenizer is None:
        return None
    names = [s["name"] for s in source.input_specs]
    tensors = tokenize_texts(
        source.tokenizer, list(texts), names, max_length=target.sequence_length
    )
    return EvalInputs(tensors, f"{len(texts)} training sentences")


def _plan(
    source: SourceModel,
    target: Target,
    *,
    calibration_data: Arrays | None,
    eval_data: Arrays | None,
    train: EvalInputs | None,
    train_texts: Sequence[str] | None,
) -> InputPlan:
    specs = source.input_specs
    return plan_inputs(
        calibration=(
            inputs_from_arrays(calibration_data, specs, role="calibration")
            if calibration_data is not None
            else None
        ),
        evaluation=(
            inputs_from_arrays(eval_data, specs, role="evaluation")
            if eval_data is not None
            else None
        ),
        training=train,
        training_texts=_texts_as_inputs(source, train_texts, target),
        defaults=lambda role: source.default_inputs(target, role=role),
    )


def _student_loader(student_dir: Path | None, workdir: Path) -> Callable[[], Any] | None:
    if student_dir is None:
        return None

    def load() -> Any:
        student = load_source(student_dir, workdir=workdir / "student")
        if student.module is None:
            raise UnsupportedModelError(
                "the uploaded student is an ONNX graph, which cannot be trained; upload it as a "
                "Hugging Face directory or architecture.json + model.safetensors"
            )
        return student.module

    return load


def compress_model(
    source_dir: Path,
    recipe: Recipe,
    *,
    target: Target,
    workdir: Path,
    settings: MeasureSettings | None = None,
    progress: Progress | None = None,
    calibration_data: Arrays | None = None,
    eval_data: Arrays | None = None,
    train_data: Arrays | None = None,
    train_texts: Sequence[str] | None = None,
    student_dir: Path | None = None,
) -> CompressionResult:
    """Compress any supported upload (Hugging Face dir, ONNX model, architecture reference).

    Arrays are named model inputs (+ optional ``labels``). ``calibration_data`` calibrates the
    steps (else ``train_data``, else fixed sentences or generated inputs). Figures are measured
    on rows nothing calibrated or trained on: ``eval_data``, else a held-out quarter of
    ``calibration_data``, else a second fixed set; the report's ``measurement`` says which,
    and says so when that could not be had. ``train_data``: for steps that train;
    ``train_texts``: unlabelled sentences that text models train on without ``train_data``.
    """
    settings = settings or MeasureSettings()
    report_progress: Progress = progress or (lambda _phase, _f: None)
    kind = detect_kind(source_dir)
    recipe.check_target(target)
    check_recipe_for_kind(recipe, kind, target)
    workdir.mkdir(parents=True, exist_ok=True)

    report_progress("loading", 0.02)
    source = load_source(source_dir, workdir=workdir)
    train = _train_inputs(source, train_data)
    plan = _plan(
        source,
        target,
        calibration_data=calibration_data,
        eval_data=eval_data,
        train=train,
        train_texts=train_texts,
    )
    inputs, labels = plan.measurement, plan.labels
    example = plan.calibration.head(2)
    onnx_runtime = target.runtime == "onnxruntime"

    # The original as the user would run it on the target runtime.
    if source.kind == "onnx":
        assert source.onnx_path is not None
        original_path = source.onnx_path
        original_stats = onnx_parameter_stats(original_path)
        original_bytes = onnx_file_bytes(original_path)
    elif onnx_runtime:
        assert source.module is not None
        report_progress("exporting original", 0.08)
        original_path = workdir / "original.onnx"
        source.export(source.module, example, original_path)
        original_stats = onnx_parameter_stats(original_path)
        original_bytes = original_path.stat().st_size
    else:
        assert source.module is not None
        original_path = source_dir
        original_stats = _torch_param_stats(source.module)
        original_bytes = int(source.inspection["weight_bytes"])

    needs_original = any(handler_for(s).stage is Stage.TORCH for s in recipe.steps)
    snapshot = copy.deepcopy(source.module) if needs_original and source.module else None
    state = ModelState(module=source.module, source_dir=source_dir, workdir=workdir)
    state.onnx_path = source.onnx_path
    steps_report: list[dict[str, Any]] = []
    n_steps = len(recipe.steps)
    for index, step in enumerate(recipe.steps):
        handler = handler_for(step)
        if handler.stage is Stage.ONNX and state.onnx_path is None:
            report_progress("exporting", 0.15 + 0.5 * index / n_steps)
            state.onnx_path = workdir / "compressed_fp32.onnx"
            source.export(state.module, example, state.onnx_path)
        phase = f"step {index + 1}/{n_steps}: {step.technique}"
        base = 0.15 + 0.5 * index / n_steps

        def step_progress(fraction: float, phase: str = phase, base: float = base) -> None:
            report_progress(phase, base + 0.5 / n_steps * min(max(fraction, 0.0), 1.0))

        step_progress(0.0)
        ctx = _step_context(
            target,
            plan.calibration,
            step_progress,
            train=train,
            texts=train_texts,
            original=(lambda: copy.deepcopy(snapshot)) if snapshot is not None else None,
            student=_student_loader(student_dir, workdir),
        )
        details = handler.apply(step, state, ctx)
        steps_report.append({"technique": step.technique, **details})

    report_progress("saving", 0.68)
    artifact_dir = workdir / "artifact"
    if artifact_dir.exists():
        shutil.rmtree(artifact_dir)
    artifact_dir.mkdir()
    if onnx_runtime:
        if state.onnx_path is None:
            state.onnx_path = workdir / "compressed_fp32.onnx"
            source.export(state.module, example, state.onnx_path)
        files = save_onnx_artifact(state.onnx_path, artifact_dir)
        if source.kind == "huggingface":
            copy_side_files(source_dir, artifact_dir, include_config=True)
        compressed_path = files[0]
        compressed_stats = onnx_parameter_stats(compressed_path)
        compressed_bytes = sum(f.stat().st_size for f in files)
        artifact_format = "onnx"
    else:
        state.module.save_pretrained(str(artifact_dir), safe_serialization=True)
        copy_side_files(source_dir, artifact_dir, include_config=False)
        compressed_path = artifact_dir
        compressed_stats = _torch_param_stats(state.module)
        compressed_bytes = sum(p.stat().st_size for p in artifact_dir.glob("*.safetensors"))
        artifact_format = "huggingface"
        if target.export_onnx:
            report_progress("exporting ONNX copy", 0.7)
            # Exported in float32: ONNX Runtime's CPU kernels need it for most ops.
            source.export(copy.deepcopy(state.module).float(), example, artifact_dir / "model.onnx")

    archive: dict[str, Any] | None = None
    folder_bytes = sum(p.stat().st_size for p in artifact_dir.rglob("*") if p.is_file())
    if folder_bytes <= PACK_LIMIT_BYTES:
        packed = workdir / "artifact.tar.xz"
        packed_bytes = pack_artifact(artifact_dir, packed)
        archive = {"format": "tar.xz", "path": packed.name, "bytes": packed_bytes}

    report_progress("measuring original", 0.72)
    runtime = "onnxruntime" if source.kind == "onnx" else target.runtime
    before = measure_in_fresh_process(
        runtime=runtime,
        model_path=original_path,
        inputs=inputs,
        batch_size=target.batch_size,
        settings=settings,
    )
    report_progress("measuring compressed", 0.86)
    after = measure_in_fresh_process(
        runtime=runtime,
        model_path=compressed_path,
        inputs=inputs,
        batch_size=target.batch_size,
        settings=settings,
    )
    report: dict[str, Any] = {
        "target": target.model_dump(),
        "measurement": {
            **settings.model_dump(exclude={"timeout_s"}),
            "sequence_length": target.sequence_length,
            "inputs": inputs.source,
            "labelled": labels is not None,
            "fidelity_inputs": {**plan.measurement_report, "used_for": MEASURED_ON_THESE},
            "calibration_inputs": plan.calibration_report,
            "training_data": train.source if train is not None else None,
            "fresh_process": True,
        },
        "original": {
            "format": source.kind,
            "architecture": source.inspection.get("architecture"),
            "runtime_format": "onnx" if onnx_runtime else "safetensors",
            "model_bytes": original_bytes,
            "upload_weight_bytes": source.inspection["weight_bytes"],
            **original_stats,
            **before.metrics(),
        },
        "compressed": {
            "format": artifact_format,
            "model_bytes": compressed_bytes,
            "archive": archive,
            **compressed_stats,
            **after.metrics(),
        },
        "fidelity": fidelity(
            before.outputs,
            after.outputs,
            attention_mask=inputs.tensors.get("attention_mask"),
            labels=labels,
        ),
        "steps": steps_report,
    }
    report["compression_ratio"] = round(original_bytes / max(compressed_bytes, 1), 3)
    if archive is not None:
        report["archive_compression_ratio"] = round(original_bytes / max(archive["bytes"], 1), 3)
    report["speedup_p50"] = round(before.latency_p50_ms / max(after.latency_p50_ms, 1e-9), 3)
    report_progress("done", 1.0)
    return CompressionResult(
        artifact_dir=artifact_dir, artifact_format=artifact_format, report=report
    )


def compress_hf_model(
    source_dir: Path,
    recipe: Recipe,
    *,
    target: Target,
    workdir: Path,
    settings: MeasureSettings | None = None,
    progress: Progress | None = None,
) -> CompressionResult:
    """Compress a Hugging Face model directory (kept for callers that only handle those)."""
    if detect_kind(source_dir) != "huggingface":
        raise InvalidModelError("not a Hugging Face model directory (no config.json)")
    return compress_model(
        source_dir, recipe, target=target, workdir=workdir, settings=settings, progress=progress
    )
