"""Latency, memory and outputs measured in a fresh process, so one job never skews another."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from compressor.errors import CompressionError
from compressor.inputs import EvalInputs
from compressor.measure.settings import MeasureSettings


@dataclass(frozen=True)
class RuntimeMeasurement:
    latency_p50_ms: float
    latency_p95_ms: float
    throughput_per_s: float
    peak_memory_bytes: int
    batch_size: int
    outputs: np.ndarray
    # What the measuring process ran on: provider, timer, threads, runtime version.
    ran_on: dict[str, Any]

    def metrics(self) -> dict[str, Any]:
        return {
            "latency_p50_ms": self.latency_p50_ms,
            "latency_p95_ms": self.latency_p95_ms,
            "throughput_per_s": self.throughput_per_s,
            "peak_memory_bytes": self.peak_memory_bytes,
            "batch_size": self.batch_size,
        }


def measure_in_fresh_process(
    *,
    runtime: str,
    model_path: Path,
    inputs: EvalInputs,
    batch_size: int,
    settings: MeasureSettings,
    device: str = "cpu",
) -> RuntimeMeasurement:
    with tempfile.TemporaryDirectory(prefix="modelpress-probe-") as tmp:
        tmp_path = Path(tmp)
        np.savez(tmp_path / "inputs.npz", **inputs.tensors)  # type: ignore[arg-type]
        cmd = [
            sys.executable,
            "-m",
            "compressor.measure.probe",
            "--runtime",
            runtime,
            "--model",
            str(model_path),
            "--inputs",
            str(tmp_path / "inputs.npz"),
            "--outputs",
            str(tmp_path / "outputs.npy"),
            "--batch-size",
            str(batch_size),
            "--threads",
            str(settings.threads),
            "--device",
            device,
            "--warmup",
            str(settings.warmup),
            "--iterations",
            str(settings.iterations),
            "--parent-pid",
            str(os.getpid()),
        ]
        try:
            proc = subprocess.run(
                cmd, capture_output=True, text=True, timeout=settings.timeout_s, check=False
            )
        except subprocess.TimeoutExpired as exc:
            raise CompressionError(
                f"measuring the {runtime} model took longer than {settings.timeout_s:.0f}s"
            ) from exc
        if proc.returncode != 0:
            tail = (proc.stderr or proc.stdout).strip().splitlines()[-1:] or ["no output"]
            raise CompressionError(f"the {runtime} model failed to run: {tail[0]}")
        stats = json.loads(proc.stdout.strip().splitlines()[-1])
        outputs = np.load(tmp_path / "outputs.npy")
    return RuntimeMeasurement(outputs=outputs, **stats)
