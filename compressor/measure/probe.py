"""Child process of ``measure_in_fresh_process``: loads one artifact, runs it, prints JSON."""

from __future__ import annotations

import argparse
import json
import os
import resource
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from compressor.formats.onnx_shapes import rows
from compressor.lifeline import die_with_parent

Batch = dict[str, np.ndarray]


@dataclass
class Runner:
    """Runs the model on host arrays; ``timer`` gives a function timing one call in ms."""

    run: Callable[[Batch], np.ndarray]
    ran_on: dict[str, Any]
    timer: Callable[[Batch], Callable[[], float]] | None = None

    def time_one(self, batch: Batch) -> Callable[[], float]:
        if self.timer is not None:
            return self.timer(batch)

        def once() -> float:
            # Wall clock: onnxruntime and CPU torch return host arrays, so the call has ended.
            start = time.perf_counter()
            self.run(batch)
            return (time.perf_counter() - start) * 1000.0

        return once


def _onnx_runner(path: Path, threads: int, device: str) -> Runner:
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    providers = ["CPUExecutionProvider"]
    if device == "cuda":
        providers.insert(0, "CUDAExecutionProvider")
        if hasattr(ort, "preload_dlls"):
            # CUDA and cuDNN from torch's nvidia wheels; without them the session falls back
            # to the CPU, which the check below turns into this measurement's error.
            ort.preload_dlls()
    session = ort.InferenceSession(str(path), opts, providers=providers)
    used = session.get_providers()[0]
    if used != providers[0]:
        raise SystemExit(f"onnxruntime could not run the graph on {providers[0]} (got {used})")
    wanted = {i.name for i in session.get_inputs()}

    def run(batch: Batch) -> np.ndarray:
        feed = {k: v for k, v in batch.items() if k in wanted}
        return np.asarray(session.run(None, feed)[0], dtype=np.float32)

    ran_on = {
        "provider": used,
        "timer": "wall clock",
        "ort_intra_op_threads": session.get_session_options().intra_op_num_threads,
        "onnxruntime_version": ort.__version__,
    }
    return Runner(run, ran_on)


def _torch_runner(path: Path, threads: int, device: str) -> Runner:
    import torch

    from compressor.formats.hf import load_hf_model

    torch.set_num_threads(threads)
    model = load_hf_model(path)
    dtype = next(model.parameters()).dtype
    on = torch.device(device)
    if on.type == "cuda":
        model.to(on)

    def forward(inputs: dict[str, torch.Tensor]) -> torch.Tensor:
        with torch.inference_mode():
            out = model(**inputs)
        return out[0] if isinstance(out, tuple) else next(iter(out.values()))

    def run(batch: Batch) -> np.ndarray:
        first = forward({k: torch.from_numpy(v).to(on) for k, v in batch.items()})
        first = first.cpu() if on.type == "cuda" else first
        return first.float().numpy() if dtype != torch.float32 else first.numpy()

    def cuda_events(batch: Batch) -> Callable[[], float]:
        # Inputs go to the GPU once: the figure is the model's, timed on the device itself.
        inputs = {k: torch.from_numpy(v).to(on) for k, v in batch.items()}
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)

        def once() -> float:
            start.record()
            forward(inputs)
            end.record()
            end.synchronize()
            return float(start.elapsed_time(end))

        return once

    ran_on = {
        "provider": None,
        "timer": "cuda events" if on.type == "cuda" else "wall clock",
        "ort_intra_op_threads": None,
        "onnxruntime_version": None,
        "torch_threads": torch.get_num_threads(),
    }
    return Runner(run, ran_on, cuda_events if on.type == "cuda" else None)


def _declared_batch(path: Path) -> int | None:
    import onnx

    from compressor.formats.onnx_shapes import declared_batch

    return declared_batch(onnx.load(str(path), load_external_data=False))


def _memory_kib(field: str) -> int:
    """VmHWM/VmRSS of this process image. ru_maxrss is not used: it keeps the peak of the
    process that exec'd us (a worker holding torch), which would hide the model's own peak."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(f"{field}:"):
                return int(line.split()[1])
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


RUNNERS = {"onnxruntime": _onnx_runner, "torch": _torch_runner}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runtime", choices=sorted(RUNNERS), required=True)
    parser.add_argument("--model", type=Path, required=True)
    parser.add_argument("--inputs", type=Path, required=True)
    parser.add_argument("--outputs", type=Path, required=True)
    parser.add_argument("--batch-size", type=int, default=1)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--iterations", type=int, default=30)
    parser.add_argument("--parent-pid", type=int, default=None)
    args = parser.parse_args()
    # A model can run for ever (a Loop of 10**15 trips): stopping the job must stop it too.
    die_with_parent(args.parent_pid)

    os.environ["OMP_NUM_THREADS"] = str(args.threads)
    # Peak memory of the model alone: what the interpreter and imports took is subtracted.
    baseline_kib = _memory_kib("VmRSS")
    runner = RUNNERS[args.runtime](args.model, args.threads, args.device)
    with np.load(args.inputs) as data:
        inputs = {k: data[k] for k in data.files}
    n = next(iter(inputs.values())).shape[0]
    # A graph with a fixed batch runs only that many rows at a time, for outputs and timing.
    fixed = _declared_batch(args.model) if args.runtime == "onnxruntime" else None
    step = fixed or 8
    outputs = [runner.run(rows(inputs, i, step, pad=True)) for i in range(0, n, step)]
    np.save(args.outputs, np.concatenate(outputs)[:n])

    if fixed:
        batch = rows(inputs, 0, fixed, pad=True)
    else:
        batch = {k: v[: args.batch_size] for k, v in inputs.items()}
    once = runner.time_one(batch)
    for _ in range(args.warmup):
        once()
    ms = np.array([once() for _ in range(args.iterations)])
    batch_size = next(iter(batch.values())).shape[0]
    print(
        json.dumps(
            {
                "latency_p50_ms": float(np.percentile(ms, 50)),
                "latency_p95_ms": float(np.percentile(ms, 95)),
                "throughput_per_s": float(batch_size / (np.median(ms) / 1000.0)),
                "peak_memory_bytes": max(_memory_kib("VmHWM") - baseline_kib, 0) * 1024,
                "batch_size": batch_size,
                "ran_on": runner.ran_on,
            }
        )
    )


if __name__ == "__main__":
    main()
