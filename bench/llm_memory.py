"""How a causal-LM job's memory grows with the model (issue 22): SmolLM2-135M-Instruct, and
random-init models of the same architecture (Llama, fp32, tied 49k vocabulary) at about 4x and
10x its weights, each through an int4 job (RTN) for vllm and for onnxruntime-genai in a fresh
process, its process tree sampled from outside (scripts/llm_job.py).

The jobs calibrate and judge on short texts (about 600 and 250 tokens) and time decode once per
model: memory is about the weights, and the quality and speed figures are in the SmolLM2
section. The growth is the slope between the smallest and the largest model, per runtime: what
one more byte of weights costs the job."""

from __future__ import annotations

import shutil
from pathlib import Path

from bench.common import Row, mb
from compressor.llm.rules import memory_bound
from scripts.llm_job import run_watched
from scripts.random_llm import save_random_llama
from scripts.smollm2 import save_smollm2

GOAL = (
    "every job's process tree (PSS, sampled from outside) <= 2 GiB + 1.5x the model's weight "
    "bytes, and the peak grows by at most 1.5 bytes per byte of weights"
)
# SmolLM2-135M is 576 wide, 30 layers, 9 heads of 64 (3 KV heads), MLP 1536.
LARGER = {
    "4x": {"hidden": 1152, "intermediate": 3072, "layers": 34, "heads": 18, "kv_heads": 6},
    "10x": {"hidden": 1792, "intermediate": 4864, "layers": 37, "heads": 28, "kv_heads": 7},
}
RUNTIMES = ("vllm", "onnxruntime-genai")


def _weights(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.glob("*.safetensors"))


def memory_growth(work: Path) -> list[Row]:
    work.mkdir(parents=True, exist_ok=True)
    models = {"SmolLM2-135M-Instruct": save_smollm2(work / "cache")}
    for name, shape in LARGER.items():
        models[f"random-init Llama, {name}"] = work / f"llama-{name}"
        save_random_llama(models[f"random-init Llama, {name}"], **shape)
    measured: dict[str, list[tuple[int, int]]] = {r: [] for r in RUNTIMES}
    rows: list[Row] = []
    for name, source in models.items():
        weights = _weights(source)
        for runtime in RUNTIMES:
            peak, row = _job_row(name, source, weights, runtime, work)
            measured[runtime].append((weights, peak))
            rows.append(row)
        # Each random model goes once measured: the 10x model is 5.4 GB.
        if source.name.startswith("llama-"):
            shutil.rmtree(source, ignore_errors=True)
    return rows + [_growth_row(runtime, measured[runtime]) for runtime in RUNTIMES]


def _job_row(name: str, source: Path, weights: int, runtime: str, work: Path) -> tuple[int, Row]:
    folder = work / f"job-{source.name}-{runtime}"
    job = run_watched(source, folder, runtime=runtime, options={"decode_budget_s": 0})
    shutil.rmtree(folder, ignore_errors=True)
    inside = int(job.llm["memory"]["peak_bytes"])
    bound = memory_bound(weights)
    peak = max(job.outside_peak_bytes, inside)
    row = Row(
        f"{name}: {runtime} int4 job (rtn)",
        {
            "weights (fp32)": mb(weights),
            "job peak, outside": mb(job.outside_peak_bytes),
            "job peak, its report": mb(inside),
            "bound": mb(bound),
            "peak - weights": mb(peak - weights),
            "job seconds": f"{job.seconds:.0f}",
        },
        goal=GOAL,
        met=peak <= bound,
        reached=f"{peak / bound:.0%} of the bound",
    )
    return peak, row


def _growth_row(runtime: str, measured: list[tuple[int, int]]) -> Row:
    (w0, p0), (w1, p1) = measured[0], measured[-1]
    slope = (p1 - p0) / (w1 - w0)
    return Row(
        f"growth ({runtime}): peak per byte of weights, smallest to largest",
        {"slope": f"{slope:.2f}", "fixed part (peak - slope x weights)": mb(p0 - slope * w0)},
        goal=GOAL,
        met=slope <= 1.5,
        reached=f"{slope:.2f} bytes of peak per byte of weights",
    )


__all__ = ["GOAL", "memory_growth"]
