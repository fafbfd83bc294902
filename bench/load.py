"""The service under load: submissions per second and p95 submission latency (what the
service adds to one job is bench/time_to_result.py).

    MODELPRESS_TEST_DATABASE_URL=postgresql+psycopg://postgres@127.0.0.1:5432/test \\
    MODELPRESS_TEST_BROKER_URL=redis://127.0.0.1:6379/10 .venv/bin/python -m bench.load

It starts its own deployment the way the tests do (tests/fixtures/stack.py: a fresh PostgreSQL
database, Redis, uvicorn and two celery workers). tests/faults/test_load.py drives the same load
with a worker killed and Redis restarted, and checks that nothing is lost.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from bench.common import Row
from tests.fixtures.stack import Stack, running_stack

JOBS = 200
CLIENTS = 20
ROUNDS = 3
# The cheapest real job: int8 weights for a 64-300-100-10 MLP, measured briefly.
SMALL_RECIPE = {"steps": [{"technique": "quantization", "scheme": "int8_dynamic"}]}
GOAL = "report: submissions per second and p95 submission latency"


@dataclass
class Submissions:
    job_ids: list[str]
    latencies_s: list[float]
    wall_s: float

    @property
    def per_second(self) -> float:
        return len(self.job_ids) / self.wall_s

    @property
    def p95_s(self) -> float:
        return statistics.quantiles(self.latencies_s, n=20, method="inclusive")[-1]


def _one_client(
    stack: Stack, body: dict[str, Any], indexes: range, keep_every: int
) -> list[tuple[str, float]]:
    done: list[tuple[str, float]] = []
    with stack.client() as client:
        for index in indexes:
            started = time.perf_counter()
            response = client.post("/v1/jobs", json=body)
            took = time.perf_counter() - started
            if response.status_code != 202:
                raise RuntimeError(f"submission answered {response.status_code}: {response.text}")
            job_id = str(response.json()["id"])
            done.append((job_id, took))
            if index % keep_every:
                cancel = client.post(f"/v1/jobs/{job_id}/cancel")
                if cancel.status_code not in (200, 409):  # 409: it finished first
                    raise RuntimeError(f"cancel answered {cancel.status_code}: {cancel.text}")
    return done


def submit_concurrently(
    stack: Stack,
    model_id: str,
    *,
    jobs: int = JOBS,
    clients: int = CLIENTS,
    keep_every: int = 1,
) -> Submissions:
    """``jobs`` submissions of the small job, spread over ``clients`` concurrent HTTP clients.

    With ``keep_every`` n > 1 the clients cancel each submission at once except every n-th:
    every job still goes through the broker and a worker, but only some run the engine."""
    body = {"model_id": model_id, "recipe": SMALL_RECIPE}
    started = time.perf_counter()
    with ThreadPoolExecutor(clients) as pool:
        futures = [
            pool.submit(_one_client, stack, body, range(i, jobs, clients), keep_every)
            for i in range(clients)
        ]
        results = [f.result() for f in futures]
    wall = time.perf_counter() - started
    flat = [pair for client in results for pair in client]
    return Submissions([i for i, _ in flat], [t for _, t in flat], wall)


def cancel_unfinished(client: httpx.Client, job_ids: list[str]) -> int:
    """Cancel what the load left queued or running; returns how many had finished."""
    finished = 0
    for job_id in job_ids:
        if client.get(f"/v1/jobs/{job_id}").json()["status"] in ("queued", "running"):
            client.post(f"/v1/jobs/{job_id}/cancel")
        else:
            finished += 1
    return finished


@contextmanager
def deployment(tmp: Path) -> Iterator[Stack]:
    """The tests' scaleout stack with a second worker; a skip there is an error here."""
    import pytest

    try:
        with running_stack("scaleout", tmp) as stack:
            stack.start_worker("worker2")
            yield stack
    except pytest.skip.Exception as exc:
        raise RuntimeError(f"no deployment to measure: {exc.msg}") from None


def service_under_load(work: Path) -> list[Row]:
    from tests.fixtures.helpers import digits_upload, upload_ready

    model_zip = digits_upload(work / "mlp")
    with deployment(work) as stack, stack.client() as client:
        model_id = upload_ready(client, model_zip)["id"]
        submitted = submit_concurrently(stack, model_id)
        finished = cancel_unfinished(client, submitted.job_ids)
    return [
        Row(
            f"{JOBS} submissions from {CLIENTS} concurrent clients (PostgreSQL + Redis, 2 workers)",
            figures={
                "submissions per second": f"{submitted.per_second:.1f}",
                "p95 submission latency": f"{submitted.p95_s * 1000:.0f} ms",
                "median submission latency": (
                    f"{statistics.median(submitted.latencies_s) * 1000:.0f} ms"
                ),
                "jobs finished by the last submission": f"{finished} of {JOBS}",
            },
            goal="report",
            reached=f"{submitted.per_second:.1f} submissions/s, p95 {submitted.p95_s * 1000:.0f} ms",
            notes=f"1-minute load average of the machine at the end: {os.getloadavg()[0]:.1f}",
        ),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="modelpress-load-") as tmp:
        for row in service_under_load(Path(tmp)):
            print(json.dumps(row.__dict__), flush=True)


if __name__ == "__main__":
    main()
