"""The typed report of one compression: what was measured, on what, and what got worse.

The API returns it, the job row stores it (as JSON) and the benchmarks read it, so all three
agree on one schema. ``version`` changes when a field changes meaning or goes away.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SerializerFunctionWrapHandler, model_serializer

from compressor.llm.report import LLMReport
from compressor.measure.fidelity import fidelity as output_fidelity
from compressor.search.report import SearchReport
from compressor.target import Target

if TYPE_CHECKING:
    from compressor.artifacts import ArtifactFormat, PackedFile
    from compressor.inputs import InputPlan
    from compressor.loaders import SourceModel
    from compressor.measure.runtime import RuntimeMeasurement
    from compressor.measure.settings import MeasureSettings

REPORT_VERSION = 1

# Outputs this far from the original are called out even when no labels tell accuracy: below
# it a user would notice the change on their own data (int8 MiniLM keeps 0.99+).
FIDELITY_WARN_COSINE = 0.99
FIDELITY_WARN_TOP1 = 0.99
# Every figure of the report that runs the models reads the measurement inputs.
MEASURED_ON_THESE = ("fidelity", "accuracy", "latency")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class _OmitNone(_Strict):
    """Optional figures are absent, not null, when they do not apply (as the report always was)."""

    @model_serializer(mode="wrap")
    def _omit_none(self, handler: SerializerFunctionWrapHandler):  # type: ignore[no-untyped-def]
        # No return annotation: one would replace this model's JSON schema with a bare object.
        return {k: v for k, v in handler(self).items() if v is not None}


class CalibrationInputs(_Strict):
    source: str
    description: str
    rows: int


class FidelityInputs(_Strict):
    source: str
    description: str
    rows: int
    labelled: bool
    held_out: bool
    disjoint_from: list[str]
    note: str
    used_for: list[str]


class Measurement(_Strict):
    # Reports stored before held-out measurement still read back (null there); a new report
    # always has both.
    threads: int
    warmup: int
    iterations: int
    sequence_length: int
    inputs: str
    labelled: bool
    fidelity_inputs: FidelityInputs | None = None
    calibration_inputs: CalibrationInputs | None = None
    training_data: str | None
    fresh_process: bool


class RanOn(_Strict):
    """What actually ran the job, read from the processes that did (not from the target).

    Reports stored before it was recorded read back without it.
    """

    device: Literal["cpu", "cuda"] = Field(description="Where both models were measured.")
    gpu_name: str | None = Field(description="The GPU measured on; null on CPU.")
    runtime: Literal["onnxruntime", "torch", "onnxruntime-genai", "vllm"]
    provider: str | None = Field(
        description="ONNX Runtime execution provider the measured sessions used "
        "(session.get_providers()[0]); null on the torch runtime."
    )
    timer: Literal["wall clock", "cuda events"]
    training_device: Literal["cpu", "cuda"] = Field(
        description="Where torch-stage steps train (distillation, healing)."
    )
    torch_threads: int = Field(description="torch intra-op threads (steps, torch measurement).")
    ort_intra_op_threads: int | None = Field(
        description="ONNX Runtime intra-op threads of the measured sessions; null on torch."
    )
    torch_version: str
    onnxruntime_version: str | None


class RuntimeFigures(_Strict):
    latency_p50_ms: float
    latency_p95_ms: float
    throughput_per_s: float
    peak_memory_bytes: int
    batch_size: int


class ParameterStats(_Strict):
    parameters: int
    nonzero_parameters: int
    dtypes: dict[str, int]


class BaselineNote(_Strict):
    """Whether the original's figures were measured for this job or reused from an earlier
    one under the same key (compressor/baseline.py)."""

    reused: bool
    measured_at: datetime
    key: str


class OriginalModel(RuntimeFigures, ParameterStats):
    format: str
    architecture: str | None
    runtime_format: str
    model_bytes: int
    upload_weight_bytes: int
    # Present where the job kept its baselines (a worker's jobs): absent, not null, elsewhere,
    # so reports made without a store read as they always did.
    baseline: BaselineNote | None = None

    @model_serializer(mode="wrap")
    def _baseline_when_kept(self, handler: SerializerFunctionWrapHandler):  # type: ignore[no-untyped-def]
        # No return annotation: one would replace this model's JSON schema with a bare object.
        data = handler(self)
        if data.get("baseline") is None:
            data.pop("baseline", None)
        return data


class PackedArchive(_Strict):
    format: str
    path: str
    bytes: int


class CompressedModel(RuntimeFigures, ParameterStats):
    format: str
    model_bytes: int
    archive: PackedArchive | None


class Fidelity(_OmitNone):
    samples: int
    cosine_mean: float
    cosine_min: float
    max_abs_error: float
    top1_agreement: float | None = None
    kl_divergence: float | None = None
    accuracy_original: float | None = None
    accuracy_compressed: float | None = None


class StepReport(BaseModel):
    """One step: its technique, then what that technique did (its own keys, hence extra)."""

    model_config = ConfigDict(extra="allow")

    technique: str

    @property
    def details(self) -> dict[str, Any]:
        """What the technique reported, by its own keys."""
        return dict(self.model_extra or {})


class DeliveredArtifact(_Strict):
    """Added by the worker once the artifact is stored: what the download is."""

    bytes: int
    sha256: str
    format: str
    archive: str


class CompressionReport(_OmitNone):
    version: int = REPORT_VERSION
    target: Target
    measurement: Measurement
    original: OriginalModel
    compressed: CompressedModel
    fidelity: Fidelity
    steps: list[StepReport]
    compression_ratio: float
    archive_compression_ratio: float | None = None
    speedup_p50: float
    warnings: list[str] = Field(default_factory=list)
    ran_on: RanOn | None = None
    artifact: DeliveredArtifact | None = None
    # Goal-driven jobs only: the report above is the chosen candidate's; this is how it was found.
    search: SearchReport | None = None
    # Causal LMs on an LLM runtime: perplexity, greedy agreement, decode speed, memory.
    llm: LLMReport | None = None

    def as_json(self) -> dict[str, Any]:
        """The JSON the job row stores."""
        return self.model_dump(mode="json")


def regressions(
    *, original: OriginalModel, compressed: CompressedModel, fidelity: Fidelity, target: Target
) -> list[str]:
    """What is worse than the original on the target, in words (issue 10: no silent regressions)."""
    # The batch both were measured at: a fixed-batch upload overrides the target's.
    on = f"on {target.runtime}, {target.device}, batch {compressed.batch_size}"
    found: list[str] = []
    if compressed.latency_p50_ms > original.latency_p50_ms:
        found.append(
            f"slower than the original {on}: p50 {compressed.latency_p50_ms:.4g} ms vs "
            f"{original.latency_p50_ms:.4g} ms "
            f"({original.latency_p50_ms / max(compressed.latency_p50_ms, 1e-9):.2f}x)"
        )
    if compressed.model_bytes > original.model_bytes:
        found.append(
            f"larger than the original: {compressed.model_bytes} bytes vs "
            f"{original.model_bytes} bytes as the target runs it"
        )
    found.extend(_less_faithful(fidelity))
    return found


def _less_faithful(fidelity: Fidelity) -> list[str]:
    rows = f"{fidelity.samples} measured rows"
    before, after = fidelity.accuracy_original, fidelity.accuracy_compressed
    if before is not None and after is not None:
        if after < before:
            return [
                f"less accurate than the original: {after:.4f} vs {before:.4f} on {rows} "
                f"({(before - after) * 100:.2f} points lost)"
            ]
        return []
    found = []
    if fidelity.cosine_min < FIDELITY_WARN_COSINE:
        found.append(
            f"outputs differ from the original's: worst cosine {fidelity.cosine_min:.4f} "
            f"(mean {fidelity.cosine_mean:.4f}) on {rows}"
        )
    if fidelity.top1_agreement is not None and fidelity.top1_agreement < FIDELITY_WARN_TOP1:
        found.append(
            f"predicts a different class than the original on "
            f"{(1 - fidelity.top1_agreement) * 100:.1f}% of {rows}"
        )
    return found


@dataclass(frozen=True)
class SavedModel:
    """A model as the target runtime runs it: where it is, its bytes and parameter counts."""

    path: Path
    model_bytes: int
    stats: dict[str, Any]


def build_report(
    *,
    source: SourceModel,
    plan: InputPlan,
    training_data: str | None,
    target: Target,
    settings: MeasureSettings,
    original: tuple[SavedModel, RuntimeMeasurement],
    compressed: tuple[SavedModel, RuntimeMeasurement],
    artifact_format: ArtifactFormat,
    archive: PackedFile | None,
    steps: list[dict[str, Any]],
    ran_on: RanOn | None = None,
    baseline: BaselineNote | None = None,
) -> CompressionReport:
    """The report stage: the figures measured the same way for every technique, and warnings."""
    (orig, before), (comp, after) = original, compressed
    measurement = Measurement(
        **settings.latency_fields(),
        sequence_length=target.sequence_length,
        inputs=plan.measurement.source,
        labelled=plan.labels is not None,
        fidelity_inputs=FidelityInputs(**plan.measurement_report, used_for=MEASURED_ON_THESE),
        calibration_inputs=CalibrationInputs(**plan.calibration_report),
        training_data=training_data,
        fresh_process=True,
    )
    original_model = OriginalModel(
        format=source.kind,
        architecture=source.inspection.get("architecture"),
        runtime_format="onnx" if target.runtime == "onnxruntime" else "safetensors",
        model_bytes=orig.model_bytes,
        upload_weight_bytes=source.inspection["weight_bytes"],
        baseline=baseline,
        **orig.stats,
        **before.metrics(),
    )
    packed = (
        PackedArchive(format=archive.format, path=archive.path.name, bytes=archive.bytes)
        if archive is not None
        else None
    )
    compressed_model = CompressedModel(
        format=artifact_format,
        model_bytes=comp.model_bytes,
        archive=packed,
        **comp.stats,
        **after.metrics(),
    )
    fid = Fidelity(
        **output_fidelity(
            before.outputs,
            after.outputs,
            attention_mask=plan.measurement.tensors.get("attention_mask"),
            labels=plan.labels,
        )
    )
    return CompressionReport(
        target=target,
        measurement=measurement,
        original=original_model,
        compressed=compressed_model,
        fidelity=fid,
        steps=[StepReport.model_validate(s) for s in steps],
        compression_ratio=round(orig.model_bytes / max(comp.model_bytes, 1), 3),
        archive_compression_ratio=(
            round(orig.model_bytes / max(archive.bytes, 1), 3) if archive is not None else None
        ),
        speedup_p50=round(before.latency_p50_ms / max(after.latency_p50_ms, 1e-9), 3),
        warnings=_batch_warnings(source.fixed_batch, target)
        + regressions(
            original=original_model, compressed=compressed_model, fidelity=fid, target=target
        ),
        ran_on=ran_on,
    )


def _batch_warnings(fixed: int | None, target: Target) -> list[str]:
    if fixed is None or fixed == target.batch_size:
        return []
    return [
        f"the uploaded graph takes a fixed batch of {fixed}: both models were measured at "
        f"batch {fixed}, not at the target's batch {target.batch_size}"
    ]
