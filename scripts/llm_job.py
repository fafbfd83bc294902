"""One causal-LM job, the engine's entry point, in a fresh process as a worker's job process runs
it, its process tree sampled from outside for the whole run: the memory-bound test and the
bench's memory-growth rows.

``python -m scripts.llm_job SOURCE WORKDIR STEP_JSON RUNTIME [OPTIONS_JSON]`` runs the job on
short texts and prints the report's ``llm`` section on a line of its own. OPTIONS_JSON:
``calibration_words`` (480), and ``decode_budget_s`` (the worker setting's default).
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPORT = "REPORT "
RTN_INT4 = {"technique": "quantization", "scheme": "int4_weight_only", "method": "rtn"}


def short_texts(calibration_words: int = 480) -> dict[str, list[str]]:
    """About 600 tokens to calibrate (the fewest a causal LM job takes is 128) and 250 to judge:
    what memory does is about the weights, and a large model's forward on a small CPU is slow."""
    from compressor.llm.texts import default_calibration_texts, default_eval_text

    words = " ".join(default_calibration_texts()).split()
    return {
        "calibration": [" ".join(words[i : i + 40]) for i in range(0, calibration_words, 40)],
        "eval": [" ".join(default_eval_text().split()[:200])],
    }


@dataclass(frozen=True)
class WatchedJob:
    llm: dict[str, Any]  # the report's llm section
    outside_peak_bytes: int  # the job process tree's PSS peak, sampled from outside
    samples: int
    seconds: float


def run_watched(
    source: Path,
    workdir: Path,
    *,
    step: dict[str, Any] | None = None,
    runtime: str = "vllm",
    options: dict[str, float] | None = None,
) -> WatchedJob:
    from compressor.measure.memory import PeakMemory

    started = time.monotonic()
    job = subprocess.Popen(
        [sys.executable, "-m", "scripts.llm_job", str(source), str(workdir),
         json.dumps(step or RTN_INT4), runtime, json.dumps(options or {})],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )  # fmt: skip
    with PeakMemory(job.pid, interval_s=0.1) as outside:
        out, err = job.communicate()
    if job.returncode != 0:
        raise RuntimeError(f"the job exited {job.returncode}: {err[-4000:]}")
    line = next(line for line in out.splitlines() if line.startswith(REPORT))
    return WatchedJob(
        llm=json.loads(line.removeprefix(REPORT)),
        outside_peak_bytes=outside.peak_bytes,
        samples=outside.samples,
        seconds=time.monotonic() - started,
    )


def main() -> None:
    from compressor.measure.settings import MeasureSettings
    from compressor.pipeline import compress_model
    from compressor.recipe import Recipe
    from compressor.target import Target

    source, workdir, step, runtime = sys.argv[1:5]
    options = json.loads(sys.argv[5]) if len(sys.argv) > 5 else {}
    texts = short_texts(int(options.get("calibration_words", 480)))
    settings = MeasureSettings.model_validate(
        {k: v for k, v in options.items() if k == "decode_budget_s"}
    )
    started = time.monotonic()

    def phase(name: str, fraction: float) -> None:  # on stderr: where a slow job's time went
        print(f"{time.monotonic() - started:7.1f} s  {fraction:.2f}  {name}", file=sys.stderr)

    result = compress_model(
        Path(source),
        Recipe.model_validate({"steps": [json.loads(step)]}),
        target=Target.model_validate({"runtime": runtime}),
        workdir=Path(workdir),
        calibration_texts=texts["calibration"],
        eval_texts=texts["eval"],
        progress=phase,
        settings=settings,
    )
    print(REPORT + json.dumps(result.report["llm"]), flush=True)


if __name__ == "__main__":
    main()
