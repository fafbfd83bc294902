"""Wall-clock runs of one onnxruntime session in this process, for choices that compare
costs inside a step (the report's figures come from the fresh-process probe)."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from compressor.inputs import EvalInputs

if TYPE_CHECKING:
    import onnx


def session_runs(session: Any, feed: dict[str, Any], *, warmup: int, repeats: int) -> list[float]:
    """Seconds per run after ``warmup`` untimed runs; the call returns host arrays, so a run
    has ended when it returns."""
    for _ in range(warmup):
        session.run(None, feed)
    runs = []
    for _ in range(repeats):
        start = time.perf_counter()
        session.run(None, feed)
        runs.append(time.perf_counter() - start)
    return runs


@dataclass
class SliceRunner:
    """Runs ONNX graphs on a slice of rows, in the batches the graph accepts: their outputs,
    and their p50 latency on one thread."""

    data: EvalInputs
    batch: int

    def outputs(self, model: onnx.ModelProto | Path) -> np.ndarray:
        session = cpu_session(model, threads=0)
        names = {i.name for i in session.get_inputs()}
        outs = [
            session.run(None, {k: v for k, v in b.items() if k in names})[0]
            for b in self.data.batches(self.batch)
        ]
        return np.concatenate(outs).astype(np.float32)

    def p50_ms(self, path: Path, *, iterations: int = 20) -> float:
        session = cpu_session(path, threads=1)
        names = {i.name for i in session.get_inputs()}
        feed = {k: v for k, v in self.data.head(self.batch).items() if k in names}
        times = session_runs(session, feed, warmup=3, repeats=iterations)
        return float(np.median(times) * 1000.0)


def cpu_session(model: onnx.ModelProto | Path, *, threads: int) -> Any:
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.log_severity_level = 3
    if threads:
        opts.intra_op_num_threads = threads
        opts.inter_op_num_threads = 1
    source = str(model) if isinstance(model, Path) else model.SerializeToString()
    return ort.InferenceSession(source, opts, providers=["CPUExecutionProvider"])
