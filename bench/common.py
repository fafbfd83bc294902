"""What every benchmark row shares: the machine, fresh-process measurement, rows and goals."""

from __future__ import annotations

import os
import platform
import typing
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from compressor.formats.onnx_io import strip_debug_info
from compressor.inputs import EvalInputs
from compressor.measure.fidelity import fidelity
from compressor.measure.runtime import RuntimeMeasurement, measure_in_fresh_process
from compressor.measure.settings import MeasureSettings
from compressor.report import CompressionReport
from compressor.techniques import TechniqueConfig


def registered_techniques() -> list[str]:
    """Every technique this build offers: the members of the public ``TechniqueConfig`` union.

    Each technique's module defines its config and registers its handler together, so a
    config in the union is a registered technique.
    """
    union = typing.get_args(TechniqueConfig)[0]
    return sorted(cls.model_fields["technique"].default for cls in typing.get_args(union))


@dataclass
class Row:
    """One benchmark line: what was measured, against what, and whether the goal was met."""

    name: str
    figures: dict[str, str] = field(default_factory=dict)
    goal: str = ""
    met: bool | None = None
    reached: str = ""
    notes: str = ""

    def verdict(self) -> str:
        if self.met is None:
            return self.reached or "n/a"
        return ("met: " if self.met else "NOT met: ") + self.reached


def not_available(name: str, techniques: list[str], goal: str = "") -> Row | None:
    """A row for a technique that is not registered (yet), instead of a crash."""
    registered = registered_techniques()
    missing = [t for t in techniques if t not in registered]
    if not missing:
        return None
    return Row(
        name,
        goal=goal,
        reached="not available",
        notes=f"technique(s) {missing} not registered in this build (registered: {registered})",
    )


def guarded(name: str, goal: str, fn: Callable[[], list[Row]]) -> list[Row]:
    """Run one benchmark; a failure becomes a row saying so, the rest of the bench goes on."""
    try:
        return fn()
    except Exception as exc:  # a benchmark must report, not crash the table
        message = " ".join(str(exc).split())[:400]
        return [Row(name, goal=goal, reached="failed", notes=f"{type(exc).__name__}: {message}")]


def measure(
    runtime: str, path: Path, inputs: EvalInputs, batch: int, settings: MeasureSettings
) -> RuntimeMeasurement:
    return measure_in_fresh_process(
        runtime=runtime, model_path=path, inputs=inputs, batch_size=batch, settings=settings
    )


def best_of(
    rounds: int,
    models: dict[str, Path],
    inputs: EvalInputs,
    batch: int,
    settings: MeasureSettings,
) -> dict[str, RuntimeMeasurement]:
    """Alternate the models over ``rounds`` fresh processes and keep each one's fastest p50.

    On a shared 2-core machine a neighbour's burst can slow one process; alternating and
    keeping the best round treats every model alike.
    """
    best: dict[str, RuntimeMeasurement] = {}
    for _ in range(rounds):
        for name, path in models.items():
            m = measure("onnxruntime", path, inputs, batch, settings)
            if name not in best or m.latency_p50_ms < best[name].latency_p50_ms:
                best[name] = m
    return best


def stripped_copy(src: Path, dest: Path) -> Path:
    """``src`` without debug info, as the engine saves its artifacts, for like-for-like bytes."""
    import onnx

    model = onnx.load(str(src))
    strip_debug_info(model)
    onnx.save(model, str(dest))
    return dest


def engine_says(report: CompressionReport) -> str:
    """The engine's own account of its measurement inputs, as a cross-check of the bench's."""
    fid = report.measurement.fidelity_inputs
    if fid is None:  # only reports stored before held-out measurement lack it
        return "the engine's report does not say which inputs it measured on"
    disjoint = ", ".join(fid.disjoint_from) or "nothing"
    return (
        f"the engine's report: measured on {fid.source} "
        f"(held out: {fid.held_out}, disjoint from {disjoint})"
        # The engine's note matters when it could not hold rows out; otherwise it repeats this.
        + (f", note: {fid.note}" if fid.note and not fid.held_out else "")
    )


def cosine_min(ref: RuntimeMeasurement, cand: RuntimeMeasurement, inputs: EvalInputs) -> float:
    f = fidelity(ref.outputs, cand.outputs, attention_mask=inputs.tensors.get("attention_mask"))
    return float(f["cosine_min"])


def accuracy(outputs: np.ndarray, labels: np.ndarray) -> float:
    return float((outputs.argmax(-1) == labels).mean())


def points(lost: float) -> str:
    """Accuracy change in points, signed the way a reader expects: a gain is not a negative loss."""
    if lost < 0:
        return f"{-lost:.2f} points gained"
    return f"{lost:.2f} points lost"


def mb(n: int | float) -> str:
    return f"{n / 1e6:.2f} MB" if n >= 1e5 else f"{n / 1e3:.1f} KB"


def machine() -> dict[str, Any]:
    import onnxruntime
    import torch

    cpu = platform.processor() or "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "gpu": "none",
        "python": platform.python_version(),
        "torch": torch.__version__,
        "onnxruntime": onnxruntime.__version__,
    }


def search_phases(client: Any, report: dict[str, Any]) -> str:
    """Where a goal search's candidate time went: each candidate's own ``/phases`` summed by
    phase over the candidates (a step is named by its technique: "step 2/6: distillation")."""
    totals: dict[str, float] = {}
    for cand in report["search"]["candidates"]:
        for p in client.get(f"/v1/jobs/{cand['job_id']}/phases").json()["phases"]:
            phase = str(p["phase"]).split(": ", 1)[-1]
            totals[phase] = totals.get(phase, 0.0) + float(p["seconds"])
    ranked = sorted(totals.items(), key=lambda kv: -kv[1])
    return ", ".join(f"{phase} {seconds:.1f} s" for phase, seconds in ranked)
