"""The original's measurement, kept and reused (issue 24: measure the original once).

Exporting and measuring the upload as it is takes a job seconds to minutes, and every child of a
goal job, like every later job on the same model and target, would get the same figures. They
are a function of the key below; a caller that passes a ``BaselineStore`` to ``compress_model``
gets them from it when the key matches, and stores them when it does not.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import platform
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from functools import partial
from importlib import metadata
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from compressor.digest import sha256_stream
from compressor.inputs import EvalInputs
from compressor.measure.runtime import RuntimeMeasurement
from compressor.measure.settings import MeasureSettings
from compressor.target import Target

# Bumped when exporting or measuring the original changes what it yields, so no figure measured
# the old way is reused. The package versions that export and run the model join it.
BASELINE_FORMAT = 1
_VERSIONED = ("modelpress", "torch", "onnxruntime")


# Writes the original's ONNX export, as the job that measured it exported it, to the path given.
GraphWriter = Callable[[Path], None]


@dataclass(frozen=True)
class StoredBaseline:
    """The original as the target runs it: its bytes, parameter counts and measurement.
    ``graph``: its ONNX export where one was kept (a torch or Hugging Face upload for ONNX
    Runtime), the graph a later job's ONNX steps start from instead of exporting again."""

    model_bytes: int
    stats: dict[str, Any]
    measurement: RuntimeMeasurement
    measured_at: datetime
    graph: GraphWriter | None = None


class BaselineStore(Protocol):
    """Where baselines are kept, by key (the service's is per tenant: app/baselines/store.py)."""

    def get(self, key: str) -> StoredBaseline | None: ...

    def put(self, key: str, baseline: StoredBaseline) -> None:
        """Store ``baseline`` under ``key``, replacing one stored before."""


class InMemoryBaselines:
    """A store for one process: tests, benchmarks, a script compressing one model many ways."""

    def __init__(self) -> None:
        self.stored: dict[str, StoredBaseline] = {}
        self._graphs = tempfile.TemporaryDirectory(prefix="modelpress-baselines-")

    def get(self, key: str) -> StoredBaseline | None:
        return self.stored.get(key)

    def put(self, key: str, baseline: StoredBaseline) -> None:
        if baseline.graph is not None:  # the job's folder may go: the store keeps a copy
            kept = Path(self._graphs.name) / f"{hashlib.sha256(key.encode()).hexdigest()}.onnx"
            baseline.graph(kept)
            baseline = dataclasses.replace(baseline, graph=graph_from(kept))
        self.stored[key] = baseline


def _copy(src: Path, dest: Path) -> None:
    shutil.copyfile(src, dest)


def graph_from(path: Path) -> GraphWriter:
    """A graph writer that copies the file at ``path`` (which must outlive the writer)."""
    return partial(_copy, path)


def engine_version() -> str:
    """What made the figures: the baseline format and the installed versions that export and
    measure (a worker upgraded to another torch or ONNX Runtime measures afresh)."""
    versions = []
    for package in _VERSIONED:
        try:
            versions.append(f"{package} {metadata.version(package)}")
        except metadata.PackageNotFoundError:
            versions.append(f"{package} absent")
    return f"baseline {BASELINE_FORMAT}; " + ", ".join(versions)


def cpu_model() -> str:
    """The processor's name: a latency measured on one kind of machine is no baseline for a
    compressed model timed on another, so workers share baselines only with their own kind."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def model_digest(source: Path) -> str:
    """SHA-256 over the upload's files, each by its path inside the upload and its bytes."""
    digest = hashlib.sha256()
    files = [source] if source.is_file() else sorted(p for p in source.rglob("*") if p.is_file())
    for path in files:
        name = path.name if path == source else path.relative_to(source).as_posix()
        with path.open("rb") as fh:
            size, file_sha = sha256_stream(fh)
        digest.update(f"{name}\0{size}\0{file_sha}\n".encode())
    return digest.hexdigest()


def inputs_digest(inputs: EvalInputs) -> str:
    """SHA-256 over the measurement inputs: every array's name, dtype, shape and bytes."""
    digest = hashlib.sha256()
    for name in sorted(inputs.tensors):
        array = np.ascontiguousarray(inputs.tensors[name])
        digest.update(f"{name}\0{array.dtype.str}\0{array.shape}\n".encode())
        digest.update(array.tobytes())
    return digest.hexdigest()


def baseline_key(
    *,
    model: str,
    target: Target,
    inputs: str,
    settings: MeasureSettings,
    measured_as: dict[str, Any],
) -> str:
    """The key of a baseline: the model's digest, the target (without the request to measure
    again, which changes no figure), the inputs' digest, the measurement settings, how it is
    measured (runtime, resolved device, the machine's CPU and GPU model, batch) and the engine
    version."""
    parts = {
        "model": model,
        "target": target.model_dump(mode="json", exclude={"remeasure_baseline"}),
        "inputs": inputs,
        "settings": settings.latency_fields(),
        "measured_as": measured_as,
        "engine": engine_version(),
    }
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()


@dataclass(frozen=True)
class BaselineLookup:
    """A job's key in its store and what was found there: None when the original is measured
    (nothing stored under the key, or the target asks to measure again)."""

    store: BaselineStore
    key: str
    found: StoredBaseline | None


def look_up(
    store: BaselineStore,
    *,
    source_dir: Path,
    inputs: EvalInputs,
    target: Target,
    settings: MeasureSettings,
    measured_as: dict[str, Any],
) -> BaselineLookup:
    key = baseline_key(
        model=model_digest(source_dir),
        target=target,
        inputs=inputs_digest(inputs),
        settings=settings,
        measured_as=measured_as,
    )
    found = None if target.remeasure_baseline else store.get(key)
    return BaselineLookup(store, key, found)
