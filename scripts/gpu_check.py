"""GPU check of the engine: real jobs run on CUDA, then its GPU-oriented outputs on all-MiniLM-L6-v2.

    python3 scripts/gpu_check.py                  # CUDA; exits 0 saying so when absent
    python3 scripts/gpu_check.py --device cpu     # same code paths on CPU (dry run)

Runs from the source tree, with no install of modelpress, on whatever torch and onnxruntime the
machine has (Python 3.11 or 3.12); a missing package is named before anything runs.

First, real jobs through the engine's one entry point (``compress_model``) with a GPU target:
prune, heal (distillation from the original, trained on CUDA) and fp16, measured by the engine
itself on CUDA (onnxruntime's CUDAExecutionProvider; the torch runtime timed with CUDA events).
Its table prints each report's ``ran_on`` (device, GPU, provider, timer, threads) and figures,
and says what was not measured and why.

Then the engine produces each artifact (fp16 / bf16 casts saved as Hugging Face safetensors,
int8 / int4 weight-only MatMulNBits ONNX, 2:4 semi-structured sparsity); this script loads each
one the way a user would (``transformers.AutoModel``, ``onnxruntime.InferenceSession``), runs it
on the device, and prints a markdown table of p50 latency against the fp32 model on the same
runtime, and fidelity as the cosine between the mean-pooled sentence embeddings and those of
the fp32 torch model. 2:4 sparsity is also run with torch's semi-structured sparse kernels
(``to_sparse_semi_structured``, fp16, compute capability >= 8.0) against the same masked model
run dense in fp16.

Rows that cannot run here say why (no CUDA build of torch, no CUDAExecutionProvider in this
onnxruntime, a GPU older than Ampere) instead of failing the whole check.
"""

from __future__ import annotations

import argparse
import logging
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

try:
    import numpy as np
    import torch
except ModuleNotFoundError as exc:  # a bare interpreter: say what is missing, not a traceback
    sys.exit(f"gpu_check needs {exc.name} (python {sys.version.split()[0]}); install or carry it")

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.gpu_jobs import (  # noqa: E402 (after the source tree is on the path)
    MINILM_MODULES,
    SENTENCES,
    engine_jobs,
    job_markdown,
    minilm_dir,
    missing,
)

# Imported by the engine (pyproject's dependencies that a bare CUDA image may lack).
ENGINE_MODULES = (
    "pydantic",
    "safetensors",
    "onnx",
    "onnxruntime",
    "onnxscript",
    "torch_pruning",
    "transformers",  # training asks whether a module is a Hugging Face model
)


@dataclass
class Row:
    variant: str
    runtime: str
    weights: str
    p50_ms: float | None = None
    baseline_ms: float | None = None
    cosine_mean: float | None = None
    cosine_min: float | None = None
    note: str = ""


def _inputs(tokenizer: Any, *, batch: int, seq_len: int) -> dict[str, np.ndarray]:
    texts = [f"{SENTENCES[i % len(SENTENCES)]} ({i})" for i in range(batch)]
    enc = tokenizer(
        texts, padding="max_length", truncation=True, max_length=seq_len, return_tensors="np"
    )
    return {k: np.asarray(v, dtype=np.int64) for k, v in enc.items()}


def _mean_pool(hidden: np.ndarray, mask: np.ndarray) -> np.ndarray:
    weights = mask[..., None].astype(np.float64)
    return (hidden.astype(np.float64) * weights).sum(1) / weights.sum(1)


def _cosine(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return (a * b).sum(-1) / (np.linalg.norm(a, axis=-1) * np.linalg.norm(b, axis=-1))


def _timed(fn: Callable[[], Any], *, sync: Callable[[], None], warmup: int, iters: int) -> float:
    for _ in range(warmup):
        fn()
    sync()
    times = []
    for _ in range(iters):
        start = time.perf_counter()
        fn()
        sync()
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times)


class Checker:
    def __init__(self, args: argparse.Namespace, workdir: Path, model_dir: Path) -> None:
        from transformers import AutoTokenizer

        self.args = args
        self.workdir = workdir
        self.device = torch.device(args.device)
        self.model_dir = model_dir
        tokenizer = AutoTokenizer.from_pretrained(str(self.model_dir))
        self.np_inputs = _inputs(tokenizer, batch=args.batch_size, seq_len=args.seq_len)
        self.mask = self.np_inputs["attention_mask"]
        self.torch_inputs = {
            k: torch.from_numpy(v).to(self.device) for k, v in self.np_inputs.items()
        }
        self.reference: np.ndarray | None = None
        self.rows: list[Row] = []

    def sync(self) -> None:
        if self.device.type == "cuda":
            torch.cuda.synchronize()

    # -- engine -----------------------------------------------------------------------------

    def compress(self, name: str, steps: list[dict[str, Any]], *, runtime: str) -> Path:
        from compressor.measure.settings import MeasureSettings
        from compressor.pipeline import compress_model
        from compressor.recipe import Recipe
        from compressor.target import Target

        # The files are the same for any device, so they are made for a CPU target (which any
        # onnxruntime can measure) with the engine's own measurement kept minimal; the rows
        # time them here on the device. engine_jobs() covers the engine measuring on CUDA.
        result = compress_model(
            self.model_dir,
            Recipe.model_validate({"steps": steps}),
            target=Target(device="cpu", runtime=runtime, sequence_length=self.args.seq_len),  # type: ignore[arg-type]
            workdir=self.workdir / name,
            settings=MeasureSettings(threads=self.args.cpu_threads, warmup=0, iterations=3),
        )
        return result.artifact_dir

    # -- torch ------------------------------------------------------------------------------

    def _load_hf(self, folder: Path) -> torch.nn.Module:
        from transformers import AutoModel

        model = AutoModel.from_pretrained(str(folder), dtype="auto")
        return model.to(self.device).eval()

    def _run_torch(self, model: torch.nn.Module) -> tuple[float, np.ndarray]:
        with torch.inference_mode():

            def forward() -> Any:
                return model(**self.torch_inputs).last_hidden_state

            p50 = _timed(forward, sync=self.sync, warmup=self.args.warmup, iters=self.args.iters)
            hidden = forward().float().cpu().numpy()
        return p50, _mean_pool(hidden, self.mask)

    def _row(self, row: Row, p50: float, pooled: np.ndarray) -> Row:
        assert self.reference is not None
        cos = _cosine(pooled, self.reference)
        row.p50_ms, row.cosine_mean, row.cosine_min = p50, float(cos.mean()), float(cos.min())
        self.rows.append(row)
        return row

    def torch_fp32(self) -> float:
        model = self._load_hf(self.model_dir).float()
        p50, pooled = self._run_torch(model)
        self.reference = pooled
        self._row(Row("fp32 (reference)", "torch", "float32", baseline_ms=p50), p50, pooled)
        del model
        return p50

    def torch_half(self, scheme: str, baseline: float) -> None:
        folder = self.compress(
            scheme, [{"technique": "quantization", "scheme": scheme}], runtime="torch"
        )
        model = self._load_hf(folder)
        dtypes = sorted({str(p.dtype).removeprefix("torch.") for p in model.parameters()})
        want = "float16" if scheme == "fp16" else "bfloat16"
        note = "" if dtypes == [want] else f"reloaded dtypes {dtypes}, expected {want}"
        p50, pooled = self._run_torch(model)
        self._row(
            Row(
                f"{scheme} cast (engine)",
                "torch",
                ",".join(dtypes),
                baseline_ms=baseline,
                note=note,
            ),
            p50,
            pooled,
        )
        del model

    def sparsity_24(self, baseline: float) -> None:
        folder = self.compress(
            "nm24", [{"technique": "nm_sparsity", "n": 2, "m": 4}], runtime="torch"
        )
        model = self._load_hf(folder).half()
        linears = [(n, m) for n, m in model.named_modules() if isinstance(m, torch.nn.Linear)]
        violations = 0
        for _, lin in linears:
            groups = (lin.weight.detach().reshape(lin.weight.shape[0], -1, 4) != 0).sum(-1)
            violations += int((groups > 2).sum())
        note = (
            f"{len(linears)} Linear layers, {violations} groups with >2 non-zeros in saved weights"
        )
        dense_p50, dense_pooled = self._run_torch(model)
        self._row(
            Row(
                "2:4 masked, dense fp16 (engine)",
                "torch",
                "float16, 50% zeros",
                baseline_ms=baseline,
                note=note,
            ),
            dense_p50,
            dense_pooled,
        )

        sparse_row = Row(
            "2:4 semi-structured kernels fp16",
            "torch",
            "float16 2:4 compressed",
            baseline_ms=baseline,
        )
        reason = self._semi_structured_unavailable()
        if reason:
            sparse_row.note = reason
            self.rows.append(sparse_row)
            return
        from torch.sparse import to_sparse_semi_structured

        converted = 0
        failed: list[str] = []

        def contiguous(_module: torch.nn.Module, args: tuple[Any, ...]) -> tuple[Any, ...]:
            # The sparse linear flattens its input with .view(), which needs contiguous memory.
            return (args[0].contiguous(), *args[1:])

        for name, lin in linears:
            lin.register_forward_pre_hook(contiguous)
            try:
                lin.weight = torch.nn.Parameter(
                    to_sparse_semi_structured(lin.weight.detach()), requires_grad=False
                )
                converted += 1
            except (RuntimeError, ValueError) as exc:
                failed.append(f"{name}: {exc}")
        try:
            p50, pooled = self._run_torch(model)
        except RuntimeError as exc:
            sparse_row.note = f"sparse forward failed: {exc}"
            self.rows.append(sparse_row)
            return
        backend = "cuSPARSELt" if torch.backends.cusparselt.is_available() else "CUTLASS"
        sparse_row.note = (
            f"{converted}/{len(linears)} Linear layers sparse ({backend}); "
            f"{dense_p50 / p50:.2f}x vs the same weights dense"
            + (f"; left dense: {failed[:3]}" if failed else "")
        )
        self._row(sparse_row, p50, pooled)

    def _semi_structured_unavailable(self) -> str:
        if self.device.type != "cuda":
            return "n/a: semi-structured sparse kernels are CUDA-only"
        major, minor = torch.cuda.get_device_capability(self.device)
        if major < 8:
            return f"n/a: needs compute capability >= 8.0, this GPU is {major}.{minor}"
        return ""

    # -- onnxruntime ------------------------------------------------------------------------

    def _ort_provider(self) -> tuple[str | None, str]:
        import onnxruntime as ort

        available = ort.get_available_providers()
        if self.device.type == "cpu":
            return "CPUExecutionProvider", ""
        if "CUDAExecutionProvider" in available:
            return "CUDAExecutionProvider", ""
        return None, (
            f"n/a: onnxruntime {ort.__version__} has no CUDAExecutionProvider "
            f"(providers: {', '.join(available)}); install onnxruntime-gpu"
        )

    def _run_ort(self, path: Path, provider: str) -> tuple[float, np.ndarray]:
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.log_severity_level = 3
        session = ort.InferenceSession(str(path), options, providers=[provider])
        if provider not in session.get_providers():
            raise RuntimeError(
                f"{provider} was not used (session providers {session.get_providers()})"
            )
        names = {i.name for i in session.get_inputs()}
        feed = {k: v for k, v in self.np_inputs.items() if k in names}
        out_name = session.get_outputs()[0].name

        def forward() -> Any:
            return session.run([out_name], feed)[0]

        p50 = _timed(forward, sync=lambda: None, warmup=self.args.warmup, iters=self.args.iters)
        hidden = np.asarray(forward(), dtype=np.float32)
        pooled = hidden.astype(np.float64) if hidden.ndim == 2 else _mean_pool(hidden, self.mask)
        return p50, pooled

    def onnx_rows(self) -> None:
        import onnx

        provider, reason = self._ort_provider()
        runtime = f"onnxruntime {provider or ''}".strip()
        schemes = [("fp16", None), ("int8_weight_only", 8), ("int4_weight_only", 4)]
        artifacts: dict[str, Path] = {}
        for scheme, _bits in schemes:
            folder = self.compress(
                f"onnx-{scheme}",
                [{"technique": "quantization", "scheme": scheme}],
                runtime="onnxruntime",
            )
            artifacts[scheme] = next(folder.glob("*.onnx"))
        original = self.workdir / "onnx-fp16" / "original.onnx"
        if provider is None:
            for label in ("fp32 ONNX (baseline)", *(f"{s} ONNX (engine)" for s, _ in schemes)):
                self.rows.append(Row(label, "onnxruntime CUDA", "", note=reason))
            return
        base_p50, base_pooled = self._run_ort(original, provider)
        self._row(
            Row(
                "fp32 ONNX (baseline)",
                runtime,
                "float32",
                baseline_ms=base_p50,
                note="ORT rows include host<->device copies" if self.device.type == "cuda" else "",
            ),
            base_p50,
            base_pooled,
        )
        for scheme, bits in schemes:
            path = artifacts[scheme]
            ops = [n.op_type for n in onnx.load(str(path), load_external_data=False).graph.node]
            nbits = ops.count("MatMulNBits")
            note = f"{nbits} MatMulNBits ({bits}-bit)" if bits else ""
            try:
                p50, pooled = self._run_ort(path, provider)
            except Exception as exc:  # an op without a kernel on this provider: report, go on
                self.rows.append(
                    Row(f"{scheme} ONNX (engine)", runtime, scheme, note=f"failed: {exc}"[:200])
                )
                continue
            self._row(
                Row(f"{scheme} ONNX (engine)", runtime, scheme, baseline_ms=base_p50, note=note),
                p50,
                pooled,
            )


def _fmt(value: float | None, spec: str) -> str:
    return "n/a" if value is None else format(value, spec)


def markdown(rows: list[Row]) -> str:
    lines = [
        "| variant | runtime | weights | p50 ms | speedup vs fp32 (same runtime) | cosine mean | cosine min | note |",
        "|---|---|---|---:|---:|---:|---:|---|",
    ]
    for r in rows:
        speedup = None if r.p50_ms is None or r.baseline_ms is None else r.baseline_ms / r.p50_ms
        lines.append(
            f"| {r.variant} | {r.runtime} | {r.weights} | {_fmt(r.p50_ms, '.3f')} | "
            f"{_fmt(speedup, '.2f')} | {_fmt(r.cosine_mean, '.5f')} | {_fmt(r.cosine_min, '.5f')} | "
            f"{r.note} |"
        )
    return "\n".join(lines)


def _environment(device: torch.device) -> str:
    import onnxruntime as ort

    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "CPU"
    return (
        f"device: {name}; torch {torch.__version__} (CUDA {torch.version.cuda}); "
        f"onnxruntime {ort.__version__} ({', '.join(ort.get_available_providers())})"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", choices=["cuda", "cpu"], default="cuda")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--seq-len", type=int, default=128)
    parser.add_argument("--warmup", type=int, default=10)
    parser.add_argument("--iters", type=int, default=50)
    parser.add_argument("--cpu-threads", type=int, default=4, help="engine export and CPU work")
    parser.add_argument("--workdir", type=Path, default=None)
    parser.add_argument(
        "--minilm-dir", type=Path, default=None, help="all-MiniLM-L6-v2 folder (else the package)"
    )
    args = parser.parse_args(argv)

    if args.device == "cuda" and not torch.cuda.is_available():
        build = (
            f"this torch build ({torch.__version__}) has no CUDA support"
            if torch.version.cuda is None
            else f"torch {torch.__version__} (CUDA {torch.version.cuda}) sees no GPU"
        )
        print(f"no CUDA device: {build}; nothing to check (use --device cpu for a dry run)")
        return 0

    absent = missing(ENGINE_MODULES)
    if absent:
        print(
            f"cannot run the engine from the source tree here: {absent} not importable "
            f"(python {sys.version.split()[0]}); carry them as wheels or install them"
        )
        return 2

    # The ONNX exporter warns about every torchvision op it cannot register; not relevant here.
    logging.getLogger("torch.onnx._internal.exporter._registration").setLevel(logging.ERROR)
    torch.set_num_threads(args.cpu_threads)
    torch.manual_seed(0)
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="gpu-check-") as tmp:
        workdir = args.workdir or Path(tmp)
        print(_environment(torch.device(args.device)), flush=True)
        minilm = minilm_dir(args.minilm_dir, workdir)
        print("## Real jobs through the engine, measured by it\n", flush=True)
        print(job_markdown(engine_jobs(args, workdir, minilm)) + "\n", flush=True)
        if minilm is None:
            print(f"MiniLM artifact rows not run: {missing(MINILM_MODULES)} not importable")
            return 0
        checker = Checker(args, workdir, minilm)
        print(
            f"## Engine artifacts timed here\n\nbatch {args.batch_size} x seq {args.seq_len}; "
            f"p50 over {args.iters} runs after {args.warmup} warm-up\n",
            flush=True,
        )
        fp32 = checker.torch_fp32()
        for scheme in ("fp16", "bf16"):
            checker.torch_half(scheme, fp32)
        checker.sparsity_24(fp32)
        checker.onnx_rows()
        print(markdown(checker.rows))
    print(f"\ntotal {time.monotonic() - started:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
