"""Wall-clock runs of one onnxruntime session in this process, for choices that compare
costs inside a step (the report's figures come from the fresh-process probe)."""

from __future__ import annotations

import time
from typing import Any


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
