"""The one entry point: apply a recipe to a model for a target, and measure before and after."""

from __future__ import annotations

import copy
import logging
import shutil
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cached_property
from pathlib import Path
from typing import Any

import torch

from compressor.artifacts import ArtifactFormat, PackedFile, deliverable
from compressor.baseline import (
    BaselineLookup,
    BaselineStore,
    StoredBaseline,
    cpu_model,
    graph_from,
    look_up,
)
from compressor.errors import CompressionError, UnsupportedModelError
from compressor.formats.detect import detect_kind, inspect_model_dir
from compressor.formats.hf import copy_side_files, read_config
from compressor.formats.onnx_io import onnx_file_bytes, onnx_parameter_stats, save_onnx_artifact
from compressor.inputs import Arrays, EvalInputs, InputPlan, plan_job_inputs, training_inputs
from compressor.llm.inspect import LLM_RUNTIMES, is_causal_lm
from compressor.llm.pipeline import artifact_weights, compress_causal_lm
from compressor.llm.summary import llm_compression_report
from compressor.loaders import SourceModel, load_source
from compressor.measure.device import Device, gpu_name, job_device
from compressor.measure.params import torch_param_stats
from compressor.measure.runtime import RuntimeMeasurement, measure_in_fresh_process
from compressor.measure.settings import MeasureSettings
from compressor.recipe import Recipe, check_recipe_for_kind
from compressor.report import (
    BaselineNote,
    CompressionReport,
    PackedArchive,
    RanOn,
    SavedModel,
    build_report,
)
from compressor.target import Target
from compressor.techniques.base import ModelState, Stage, StepContext, handler_for
from compressor.training import training_on

log = logging.getLogger("modelpress.pipeline")

Progress = Callable[[str, float], None]


@dataclass(frozen=True)
class CompressionResult:
    artifact_dir: Path
    artifact_format: str
    compression_report: CompressionReport
    # The download: the artifact folder with report.json (and the caller's documents) beside
    # the model, packed once; the report's archive figures describe this very file.
    archive: PackedFile

    @cached_property
    def report(self) -> dict[str, Any]:
        """The report as the job row stores it (JSON)."""
        return self.compression_report.as_json()


@dataclass(frozen=True)
class _Made:
    """What the engine made, before it is packed: the folder and a report without the archive."""

    artifact_dir: Path
    artifact_format: str
    report: CompressionReport


def _describing(report: CompressionReport, packed: PackedFile) -> CompressionReport:
    """The report with the figures of the archive it travels in, which cannot be inside it."""
    archive = PackedArchive(format=packed.format, path=packed.path.name, bytes=packed.bytes)
    return report.model_copy(
        update={
            "compressed": report.compressed.model_copy(update={"archive": archive}),
            "archive_compression_ratio": round(
                report.original.model_bytes / max(packed.bytes, 1), 3
            ),
        }
    )


def _delivered(
    made: _Made, *, documents: Mapping[str, object], workdir: Path, progress: Progress
) -> CompressionResult:
    """Pack the folder once, with report.json (all but the archive's own figures) inside."""
    progress("packing", 0.99)
    report_json = made.report.as_json()
    packed = deliverable(
        made.artifact_dir, documents={**documents, "report.json": report_json}, workdir=workdir
    )
    progress("done", 1.0)
    return CompressionResult(
        made.artifact_dir, made.artifact_format, _describing(made.report, packed), packed
    )


def _step_context(
    target: Target,
    calibration: EvalInputs,
    progress: Callable[[float], None],
    *,
    train: EvalInputs | None,
    texts: Sequence[str] | None,
    original: Callable[[], Any] | None,
    student: Callable[[], Any] | None = None,
    healed_later: bool = False,
) -> StepContext:
    return StepContext(
        target=target,
        calibration=calibration,
        progress=progress,
        train=train,
        texts=texts,
        original=original,
        student=student,
        healed_later=healed_later,
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


@dataclass(frozen=True)
class _Loaded:
    """The upload in memory and the inputs each role gets."""

    source_dir: Path
    source: SourceModel
    plan: InputPlan
    train: EvalInputs | None

    @property
    def example(self) -> Arrays:
        return self.plan.calibration.head(2)


def _load(
    source_dir: Path,
    recipe: Recipe | None,
    *,
    target: Target,
    workdir: Path,
    calibration_data: Arrays | None,
    eval_data: Arrays | None,
    train_data: Arrays | None,
    train_texts: Sequence[str] | None,
) -> _Loaded:
    """The upload and its inputs; without a recipe (the original measured alone), as the
    target runs it, with no conversion for torch steps."""
    kind = detect_kind(source_dir)
    if recipe is not None:
        recipe.check_target(target)
        check_recipe_for_kind(recipe, kind, target, inspection=_llm_kind(source_dir, kind))
    workdir.mkdir(parents=True, exist_ok=True)
    torch_steps = recipe is not None and any(
        handler_for(s).stage is Stage.TORCH for s in recipe.steps
    )
    source = load_source(source_dir, workdir=workdir, torch_steps=torch_steps)
    train = training_inputs(train_data, source.input_specs)
    plan = plan_job_inputs(
        specs=source.input_specs,
        tokenizer=source.tokenizer,
        sequence_length=target.sequence_length,
        defaults=lambda role: source.default_inputs(target, role=role),
        calibration_data=calibration_data,
        eval_data=eval_data,
        train=train,
        train_texts=train_texts,
    )
    if kind == "onnx" and source.module is not None and (calibration_data or train_data):
        _check_conversion_on_data(
            source_dir, source.module, plan.calibration, rows=source.fixed_batch or 2
        )
    return _Loaded(source_dir, source, plan, train)


def _check_conversion_on_data(
    source_dir: Path, module: Any, calibration: EvalInputs, *, rows: int
) -> None:
    """The converted graph against ONNX Runtime on ``rows`` rows of the job's own data (the
    graph's fixed batch, else 2): inspection may only have had generated shapes, which a
    network with dynamic height and width may not take (compressor/formats/probe_shapes.py)."""
    from compressor.formats.detect import find_onnx_file
    from compressor.formats.onnx_shapes import rows as take_rows
    from compressor.formats.onnx_torch import check_on_inputs

    path = find_onnx_file(source_dir)
    if path is not None:
        check_on_inputs(path, module, take_rows(dict(calibration.tensors), 0, rows, pad=True))


def _llm_kind(source_dir: Path, kind: str) -> dict[str, Any] | None:
    """Enough of the inspection for the causal-LM rules (compressor/llm/rules.py)."""
    if kind != "huggingface":
        return None
    return {"kind": "causal_lm"} if is_causal_lm(read_config(source_dir)) else None


def _compress_causal_lm(
    source_dir: Path,
    recipe: Recipe,
    *,
    target: Target,
    workdir: Path,
    progress: Progress,
    calibration_texts: Sequence[str] | None,
    eval_texts: Sequence[str] | None,
    decode_budget_s: float,
) -> _Made:
    recipe.check_target(target)
    inspection = inspect_model_dir(source_dir)
    check_recipe_for_kind(recipe, "huggingface", target, inspection=inspection)
    workdir.mkdir(parents=True, exist_ok=True)
    step = recipe.steps[0]
    result = compress_causal_lm(
        source_dir,
        step,
        runtime=target.runtime,
        inspection=inspection,
        workdir=workdir,
        progress=progress,
        calibration_texts=calibration_texts,
        eval_texts=eval_texts,
        decode_budget_s=decode_budget_s,
    )
    llm = result.llm
    details = {
        **step.model_dump(mode="json"),
        "method": llm.method,
        "requested_method": getattr(step, "method", None),
        "group_sizes": llm.group_sizes,
        "candidates": [c.model_dump() for c in llm.candidates],
    }
    model_bytes, stats = artifact_weights(result.artifact_dir, result.artifact_format)
    report = llm_compression_report(
        result,
        target=target,
        inspection=inspection,
        step=details,
        compressed_bytes=model_bytes,
        compressed_stats=stats or result.figures["after"].stats,
    )
    return _Made(result.artifact_dir, result.artifact_format.value, report)


ORIGINAL_ONNX = "original.onnx"


def _original_baseline(
    loaded: _Loaded,
    *,
    target: Target,
    workdir: Path,
    progress: Progress,
    reused: StoredBaseline | None = None,
) -> SavedModel:
    """The original as the user would run it on the target runtime."""
    if reused is not None:
        # Its stored figures stand for it: nothing exports, reads or measures the original
        # (the steps export the module they change, from memory), so no path is needed.
        return SavedModel(loaded.source_dir, reused.model_bytes, reused.stats)
    source = loaded.source
    if source.kind == "onnx":
        assert source.onnx_path is not None
        path = source.onnx_path
        return SavedModel(path, onnx_file_bytes(path), onnx_parameter_stats(path))
    assert source.module is not None
    if target.runtime == "onnxruntime":
        progress("exporting original", 0.08)
        path = workdir / ORIGINAL_ONNX
        source.export(source.module, loaded.example, path)
        return SavedModel(path, path.stat().st_size, onnx_parameter_stats(path))
    weight_bytes = int(source.inspection["weight_bytes"])
    return SavedModel(loaded.source_dir, weight_bytes, torch_param_stats(source.module))


def _run_steps(
    loaded: _Loaded,
    recipe: Recipe,
    *,
    target: Target,
    workdir: Path,
    progress: Progress,
    train_texts: Sequence[str] | None,
    student_dir: Path | None,
    exported_original: Path | None = None,
) -> tuple[ModelState, list[dict[str, Any]]]:
    """``exported_original``: the unchanged module's export, read (never written) by ONNX
    steps that come before any torch step."""
    source = loaded.source
    needs_original = any(handler_for(s).stage is Stage.TORCH for s in recipe.steps)
    snapshot = copy.deepcopy(source.module) if needs_original and source.module else None
    state = ModelState(module=source.module, source_dir=loaded.source_dir, workdir=workdir)
    state.onnx_path = source.onnx_path or exported_original
    steps_report: list[dict[str, Any]] = []
    n_steps = len(recipe.steps)
    for index, step in enumerate(recipe.steps):
        handler = handler_for(step)
        base = 0.15 + 0.5 * index / n_steps
        if handler.stage is Stage.ONNX and state.onnx_path is None:
            progress("exporting", base)
            state.onnx_path = workdir / "compressed_fp32.onnx"
            source.export(state.module, loaded.example, state.onnx_path)
        phase = f"step {index + 1}/{n_steps}: {step.technique}"

        def step_progress(fraction: float, phase: str = phase, base: float = base) -> None:
            progress(phase, base + 0.5 / n_steps * min(max(fraction, 0.0), 1.0))

        step_progress(0.0)
        ctx = _step_context(
            target,
            loaded.plan.calibration,
            step_progress,
            train=loaded.train,
            texts=train_texts,
            original=(lambda: copy.deepcopy(snapshot)) if snapshot is not None else None,
            student=_student_loader(student_dir, workdir),
            healed_later=any(_heals(later) for later in recipe.steps[index + 1 :]),
        )
        details = handler.apply(step, state, ctx)
        if handler.stage is Stage.TORCH:
            state.onnx_path = None  # the graph (an ONNX upload's) no longer is the module
        steps_report.append({"technique": step.technique, **details})
    return state, steps_report


def _heals(step: Any) -> bool:
    return step.technique == "distillation" and getattr(step, "student", None) == "current"


def _save_artifact(
    loaded: _Loaded, state: ModelState, *, target: Target, workdir: Path, progress: Progress
) -> tuple[Path, ArtifactFormat, SavedModel]:
    """The artifact folder, its format, and the model in it as the target runtime runs it."""
    progress("saving", 0.68)
    source = loaded.source
    artifact_dir = workdir / "artifact"
    if artifact_dir.exists():
        shutil.rmtree(artifact_dir)
    artifact_dir.mkdir()
    if target.runtime == "onnxruntime":
        if state.onnx_path is None:
            state.onnx_path = workdir / "compressed_fp32.onnx"
            source.export(state.module, loaded.example, state.onnx_path)
        files = save_onnx_artifact(state.onnx_path, artifact_dir)
        if source.kind == "huggingface":
            copy_side_files(loaded.source_dir, artifact_dir, include_config=True)
        saved = SavedModel(
            files[0], sum(f.stat().st_size for f in files), onnx_parameter_stats(files[0])
        )
        return artifact_dir, ArtifactFormat.ONNX, saved
    state.module.save_pretrained(str(artifact_dir), safe_serialization=True)
    copy_side_files(loaded.source_dir, artifact_dir, include_config=False)
    weights = sum(p.stat().st_size for p in artifact_dir.glob("*.safetensors"))
    saved = SavedModel(artifact_dir, weights, torch_param_stats(state.module))
    if target.export_onnx:
        progress("exporting ONNX copy", 0.7)
        # Exported in float32: ONNX Runtime's CPU kernels need it for most ops.
        module = copy.deepcopy(state.module).float()
        source.export(module, loaded.example, artifact_dir / "model.onnx")
    return artifact_dir, ArtifactFormat.HUGGINGFACE, saved


def _measure(
    runtime: str,
    models: tuple[Path | None, Path],
    *,
    loaded: _Loaded,
    target: Target,
    settings: MeasureSettings,
    progress: Progress,
    device: Device,
) -> tuple[RuntimeMeasurement | None, RuntimeMeasurement]:
    """The original (unless its figures are reused: None), then the compressed model, each in
    a fresh process on the measurement inputs, both at the batch the upload accepts."""
    measured: list[RuntimeMeasurement | None] = []
    for (phase, fraction), path in zip(
        (("measuring original", 0.72), ("measuring compressed", 0.86)), models, strict=True
    ):
        if path is None:
            measured.append(None)
            continue
        progress(phase, fraction)
        measured.append(_measure_one(runtime, path, loaded, target, settings, device))
    assert measured[1] is not None
    return measured[0], measured[1]


def _measure_one(
    runtime: str,
    path: Path,
    loaded: _Loaded,
    target: Target,
    settings: MeasureSettings,
    device: Device,
) -> RuntimeMeasurement:
    return measure_in_fresh_process(
        runtime=runtime,
        model_path=path,
        inputs=loaded.plan.measurement,
        batch_size=_batch(loaded, target),
        settings=settings,
        device=device,
    )


def _batch(loaded: _Loaded, target: Target) -> int:
    """The batch the upload accepts: its graph's fixed one, else the target's."""
    return loaded.source.fixed_batch or target.batch_size


@dataclass(frozen=True)
class MeasuredOriginal:
    """The original's measurement, stored for the jobs that follow, and how every candidate of
    a goal job is measured: the same inputs, runtime, device and batch, for re-timing alike."""

    inputs: EvalInputs
    runtime: str
    device: Device
    batch_size: int
    baseline: BaselineNote | None


def measure_original(
    source_dir: Path,
    *,
    target: Target,
    workdir: Path,
    settings: MeasureSettings,
    baselines: BaselineStore | None,
    progress: Progress | None = None,
    calibration_data: Arrays | None = None,
    eval_data: Arrays | None = None,
    train_data: Arrays | None = None,
    train_texts: Sequence[str] | None = None,
    **_other_inputs: Any,
) -> MeasuredOriginal:
    """The original alone, as ``compress_model`` measures it, stored in ``baselines`` under
    the key every job on this model, target and data computes: a goal job measures it once,
    before its candidates fan out, and they all reuse it instead of racing to measure it."""
    report_progress: Progress = progress or (lambda _phase, _f: None)
    report_progress("loading", 0.02)
    loaded = _load(
        source_dir,
        None,
        target=target,
        workdir=workdir,
        calibration_data=calibration_data,
        eval_data=eval_data,
        train_data=train_data,
        train_texts=train_texts,
    )
    runtime = "onnxruntime" if loaded.source.kind == "onnx" else target.runtime
    device = job_device(target, runtime=runtime)
    lookup = _baseline_lookup(loaded, baselines, target=target, settings=settings, runtime=runtime)
    reused = lookup.found if lookup is not None else None
    original = _original_baseline(
        loaded, target=target, workdir=workdir, progress=report_progress, reused=reused
    )
    if reused is not None:
        before = reused.measurement
    else:
        report_progress("measuring original", 0.72)
        before = _measure_one(runtime, original.path, loaded, target, settings, device)
    return MeasuredOriginal(
        inputs=loaded.plan.measurement,
        runtime=runtime,
        device=device,
        batch_size=_batch(loaded, target),
        baseline=_baseline_kept(
            lookup, original, before, graph=_kept_graph(original, workdir, reused)
        ),
    )


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
    calibration_texts: Sequence[str] | None = None,
    eval_texts: Sequence[str] | None = None,
    documents: Mapping[str, object] | None = None,
    baselines: BaselineStore | None = None,
) -> CompressionResult:
    """Compress any supported upload (Hugging Face dir, ONNX model, architecture reference).

    Arrays are named model inputs (+ optional ``labels``). ``calibration_data`` calibrates the
    steps (else ``train_data``, else fixed sentences or generated inputs). Figures are measured
    on rows nothing calibrated or trained on: ``eval_data``, else a held-out quarter of
    ``calibration_data``, else a second fixed set; the report's ``measurement`` says which,
    and says so when that could not be had. ``train_data``: for steps that train;
    ``train_texts``: unlabelled sentences that text models train on without ``train_data``.
    ``calibration_texts`` / ``eval_texts``: plain text for causal LMs on an LLM runtime.
    ``documents`` (name -> JSON value, e.g. recipe.json) travel in the archive beside
    report.json; the folder is packed once, at the end, so the archive is the download.
    ``baselines``: where the original's figures are kept; one stored under this job's key
    (compressor/baseline.py) is reused instead of exporting and measuring the original again.
    """
    settings = settings or MeasureSettings()
    report_progress: Progress = progress or (lambda _phase, _f: None)
    report_progress("loading", 0.02)
    if target.runtime in LLM_RUNTIMES:
        made = _compress_causal_lm(
            source_dir,
            recipe,
            target=target,
            workdir=workdir,
            progress=report_progress,
            calibration_texts=calibration_texts,
            eval_texts=eval_texts,
            decode_budget_s=settings.decode_budget_s,
        )
        return _delivered(
            made, documents=documents or {}, workdir=workdir, progress=report_progress
        )
    loaded = _load(
        source_dir,
        recipe,
        target=target,
        workdir=workdir,
        calibration_data=calibration_data,
        eval_data=eval_data,
        train_data=train_data,
        train_texts=train_texts,
    )
    made = _compress_loaded(
        loaded,
        recipe,
        target=target,
        workdir=workdir,
        settings=settings,
        progress=report_progress,
        train_texts=train_texts,
        student_dir=student_dir,
        baselines=baselines,
    )
    return _delivered(made, documents=documents or {}, workdir=workdir, progress=report_progress)


def _compress_loaded(
    loaded: _Loaded,
    recipe: Recipe,
    *,
    target: Target,
    workdir: Path,
    settings: MeasureSettings,
    progress: Progress,
    train_texts: Sequence[str] | None,
    student_dir: Path | None,
    baselines: BaselineStore | None = None,
) -> _Made:
    """Baseline, steps, artifact, measurement and report of a loaded upload."""
    report_progress = progress
    runtime = "onnxruntime" if loaded.source.kind == "onnx" else target.runtime
    device = job_device(target, runtime=runtime)
    lookup = _baseline_lookup(loaded, baselines, target=target, settings=settings, runtime=runtime)
    reused = lookup.found if lookup is not None else None
    original = _original_baseline(
        loaded, target=target, workdir=workdir, progress=report_progress, reused=reused
    )
    starting_graph = _starting_graph(loaded, recipe, target, workdir, original, reused)
    with training_on(torch.device(device)):
        state, steps = _run_steps(
            loaded,
            recipe,
            target=target,
            workdir=workdir,
            progress=report_progress,
            train_texts=train_texts,
            student_dir=student_dir,
            exported_original=starting_graph,
        )
    artifact_dir, artifact_format, compressed = _save_artifact(
        loaded, state, target=target, workdir=workdir, progress=report_progress
    )
    measured, after = _measure(
        runtime,
        (None if reused is not None else original.path, compressed.path),
        loaded=loaded,
        target=target,
        settings=settings,
        progress=report_progress,
        device=device,
    )
    before = reused.measurement if reused is not None else measured
    assert before is not None
    report = build_report(
        source=loaded.source,
        plan=loaded.plan,
        training_data=loaded.train.source if loaded.train is not None else None,
        target=target,
        settings=settings,
        original=(original, before),
        compressed=(compressed, after),
        artifact_format=artifact_format,
        archive=None,  # packed once, with report.json, by _delivered
        steps=steps,
        ran_on=_ran_on(runtime, device, before, after),
        baseline=_baseline_kept(
            lookup, original, before, graph=_kept_graph(original, workdir, reused)
        ),
    )
    return _Made(artifact_dir, artifact_format.value, report)


def _kept_graph(original: SavedModel, workdir: Path, reused: StoredBaseline | None) -> Path | None:
    """The original's export made by this job, to keep with its figures: where it is one
    self-contained file (no external data)."""
    path = workdir / ORIGINAL_ONNX
    if reused is not None or original.path != path:
        return None
    return path if original.model_bytes == path.stat().st_size else None


def _starting_graph(
    loaded: _Loaded,
    recipe: Recipe,
    target: Target,
    workdir: Path,
    original: SavedModel,
    reused: StoredBaseline | None,
) -> Path | None:
    """The original's ONNX export where the recipe's first ONNX step comes before any torch
    step (issue 24: exporting MiniLM again took 6 s of its job): the one this job exported, or
    the one kept with a reused baseline, fetched instead of exported again."""
    if loaded.source.kind == "onnx" or target.runtime != "onnxruntime":
        return None
    if reused is None:
        return original.path if original.path == workdir / ORIGINAL_ONNX else None
    first = next((handler_for(s).stage for s in recipe.steps), Stage.TORCH)
    if reused.graph is None or first is not Stage.ONNX:
        return None
    path = workdir / ORIGINAL_ONNX
    try:
        reused.graph(path)
    except Exception:  # exported again below: slower, not wrong
        log.warning("could not fetch the original's stored graph", exc_info=True)
        path.unlink(missing_ok=True)
        return None
    return path


def _baseline_lookup(
    loaded: _Loaded,
    baselines: BaselineStore | None,
    *,
    target: Target,
    settings: MeasureSettings,
    runtime: str,
) -> BaselineLookup | None:
    """This job's baseline key in ``baselines``, and the figures stored under it."""
    if baselines is None:
        return None
    device = job_device(target, runtime=runtime)
    measured_as = {
        "runtime": runtime,
        "device": device,
        "machine": {"cpu": cpu_model(), "gpu": gpu_name(device)},
        "batch_size": _batch(loaded, target),
    }
    return look_up(
        baselines,
        source_dir=loaded.source_dir,
        inputs=loaded.plan.measurement,
        target=target,
        settings=settings,
        measured_as=measured_as,
    )


def _baseline_kept(
    lookup: BaselineLookup | None,
    original: SavedModel,
    before: RuntimeMeasurement,
    *,
    graph: Path | None = None,
) -> BaselineNote | None:
    """The report's note on the baseline; one measured now is stored for the jobs after, with
    the original's export (``graph``) where later jobs' steps can start from it."""
    if lookup is None:
        return None
    if lookup.found is not None:
        return BaselineNote(reused=True, measured_at=lookup.found.measured_at, key=lookup.key)
    stored = StoredBaseline(
        original.model_bytes,
        original.stats,
        before,
        datetime.now(UTC),
        graph=graph_from(graph) if graph is not None else None,
    )
    lookup.store.put(lookup.key, stored)
    return BaselineNote(reused=False, measured_at=stored.measured_at, key=lookup.key)


def _ran_on(
    runtime: str, device: Device, before: RuntimeMeasurement, after: RuntimeMeasurement
) -> RanOn:
    """What ran, as the measuring processes saw it; both must have run alike to be compared."""
    if before.ran_on != after.ran_on:
        raise CompressionError(
            f"the original and the compressed model were measured differently "
            f"({before.ran_on} vs {after.ran_on}); their figures cannot be compared"
        )
    facts = {"torch_threads": torch.get_num_threads(), **after.ran_on}
    return RanOn(
        device=device,
        gpu_name=gpu_name(device),
        runtime=runtime,  # type: ignore[arg-type]
        training_device=device,
        torch_version=torch.__version__,
        **facts,
    )
