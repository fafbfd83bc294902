"""Child process of ``measure_in_fresh_process``: loads one artifact, runs it, prints JSON."""

from __future__ import annotations

import argparse
import json
import os
import resource
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from compressor.formats.onnx_shapes import rows
from compressor.lifeline import die_with_parent

Runner = Callable[[dict[str, np.ndarray]], np.ndarray]


def _onnx_runner(path: Path, threads: int) -> Runner:
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    session = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
    wanted = {i.name for i in session.get_inputs()}

    def run(batch: dict[str, np.ndarray]) -> np.ndarray:
        feed = {k: v for k, v in batch.items() if k in wanted}
        return np.asarray(session.run(None, feed)[0], dtype=np.float32)

    return run


def _torch_runner(path: Path, threads: int) -> Runner:
    import torch

    from compressor.formats.hf import load_hf_model

    torch.set_num_threads(threads)
    model = load_hf_model(path)
    dtype = next(model.parameters()).dtype

    def run(batch: dict[str, np.ndarray]) -> np.ndarray:
        with torch.inference_mode():
            out = model(**{k: torch.from_numpy(v) for k, v in batch.items()})
        first = out[0] if isinstance(out, tuple) else next(iter(out.values()))
        return first.float().numpy() if dtype != torch.float32 else first.numpy()

    return run


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
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--iterations", type=int, default=30)
    parser.add_argument("--parent-pid", type=int, default=None)
    args = parser.parse_args()
    # A model can run for ever (a Loop of 10**15 trips): stopping the job must stop it too.
    die_with_parent(args.parent_pid)

    os.environ["OMP_NUM_THREADS"] = str(args.threads)
    # Peak memory of the model alone: what the interpreter and imports took is subtracted.
    baseline_kib = _memory_kib("VmRSS")
    run = RUNNERS[args.runtime](args.model, args.threads)
    with np.load(args.inputs) as data:
        inputs = {k: data[k] for k in data.files}
    n = next(iter(inputs.values())).shape[0]
    # A graph with a fixed batch runs only that many rows at a time, for outputs and timing.
    fixed = _declared_batch(args.model) if args.runtime == "onnxruntime" else None
    step = fixed or 8
    outputs = [run(rows(inputs, i, step, pad=True)) for i in range(0, n, step)]
    np.save(args.outputs, np.concatenate(outputs)[:n])

    if fixed:
        batch = rows(inputs, 0, fixed, pad=True)
    else:
        batch = {k: v[: args.batch_size] for k, v in inputs.items()}
    for _ in range(args.warmup):
        run(batch)
    times = []
    for _ in range(args.iterations):
        start = time.perf_counter()
        run(batch)
        times.append(time.perf_counter() - start)
    ms = np.array(times) * 1000.0
    batch_size = next(iter(batch.values())).shape[0]
    print(
        json.dumps(
            {
                "latency_p50_ms": float(np.percentile(ms, 50)),
                "latency_p95_ms": float(np.percentile(ms, 95)),
                "throughput_per_s": float(batch_size / (np.median(ms) / 1000.0)),
                "peak_memory_bytes": max(_memory_kib("VmHWM") - baseline_kib, 0) * 1024,
                "batch_size": batch_size,
            }
        )
    )


if __name__ == "__main__":
    main()
