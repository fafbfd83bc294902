"""Latencies measured again side by side: alternating fresh-process runs, the best of each.

A goal job's candidates are timed by whichever worker built them, while other candidates run
beside them; on a shared machine that timing carries the neighbours' load (issue 24: int8 per
channel once timed slower than fp32). Before a latency decides anything, the contenders are
timed again here, in turns, so a burst of load penalises no contender in particular.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from compressor.inputs import EvalInputs
from compressor.measure.runtime import measure_in_fresh_process
from compressor.measure.settings import MeasureSettings

ROUNDS = 3


def retime(
    models: Mapping[str, Path],
    *,
    runtime: str,
    inputs: EvalInputs,
    batch_size: int,
    settings: MeasureSettings,
    device: str = "cpu",
    rounds: int = ROUNDS,
) -> dict[str, float]:
    """Each model's p50 latency in ms: ``rounds`` rounds, each timing every model once in a
    fresh process, in turn (the order rotates each round); the lowest p50 of a model's runs
    is its figure, the one least disturbed by anything else on the machine."""
    names = list(models)
    best: dict[str, float] = {}
    for round_no in range(rounds):
        shift = round_no % max(len(names), 1)
        for name in names[shift:] + names[:shift]:
            measured = measure_in_fresh_process(
                runtime=runtime,
                model_path=models[name],
                inputs=inputs,
                batch_size=batch_size,
                settings=settings,
                device=device,
            )
            best[name] = min(best.get(name, measured.latency_p50_ms), measured.latency_p50_ms)
    return best
