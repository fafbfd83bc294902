"""The GPU path: real jobs through the engine with a GPU target (heal trained on CUDA, fp16,
measured by the engine on CUDA), from scripts/gpu_check.py. On a machine without CUDA the row
says it was not measured and why, instead of timing a CPU and calling it a GPU."""

from __future__ import annotations

import argparse
from pathlib import Path

import torch

from bench.common import Row

GOAL = "the reports name the GPU, the provider and the timer; speed and fidelity as measured"
NAME = "GPU path (scripts/gpu_check.py): prune + heal on CUDA + fp16, measured on CUDA"


def gpu_rows(work: Path) -> list[Row]:
    if not torch.cuda.is_available():
        build = (
            f"torch {torch.__version__} has no CUDA support"
            if torch.version.cuda is None
            else f"torch {torch.__version__} (CUDA {torch.version.cuda}) sees no GPU"
        )
        return [
            Row(
                NAME,
                goal=GOAL,
                reached="not measured",
                notes=f"this machine has no CUDA device ({build}); run "
                "`python3 scripts/gpu_check.py` from the source tree on a GPU machine",
            )
        ]
    from bench.gpu_jobs import engine_jobs, minilm_dir

    args = argparse.Namespace(
        device="cuda", batch_size=32, seq_len=128, warmup=10, iters=50, cpu_threads=4
    )
    return [
        Row(
            f"GPU path: {job.job}",
            figures={k: str(v) for k, v in job.figures.items()},
            goal=GOAL,
            reached=job.note or "measured",
        )
        for job in engine_jobs(args, work, minilm_dir(None, work))
    ]
