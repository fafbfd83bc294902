"""What one job costs the shared parts, and how throughput follows the worker count: the
measurements behind docs/scaling.md.

    MODELPRESS_TEST_DATABASE_URL=postgresql+psycopg://postgres@127.0.0.1:5432/test \\
    MODELPRESS_TEST_BROKER_URL=redis://127.0.0.1:6379/10 .venv/bin/python -m bench.capacity

For 1, 2 and 4 workers it starts the tests' scaleout deployment (tests/fixtures/stack.py: a
fresh PostgreSQL database, Redis, uvicorn, celery workers), submits the same small real job
(digits MLP int8_dynamic) many times, and follows each with a server-sent event stream until it
ends, then downloads its artifact, as a user would. Around each run it reads:
- PostgreSQL's own counters for the deployment's database (pg_stat_database: transactions,
  rows read and written), from a connection to another database so the reading adds nothing;
- the connections the deployment holds, sampled every half second (pg_stat_activity);
- Redis's command counts (INFO commandstats) and its connected clients;
- the API's own request counter (GET /metrics, its own scrapes subtracted);
- the bytes and files the deployment stored in its data directory (the upload excluded).
It writes docs/capacity.json and renders docs/scaling.md from it (bench/capacity_plan.py).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx

from bench.common import machine
from bench.load import SMALL_RECIPE
from bench.page import load_average, provenance
from tests.fixtures.stack import Stack, running_stack

WORKERS = (1, 2, 4)
JOBS = 24
SAMPLE_S = 0.5
TERMINAL = ("succeeded", "failed", "cancelled")
# What the sampler itself sends to Redis: left out of the per-job count (the service's Celery
# transport uses none of them).
SAMPLER_COMMANDS = frozenset({"info", "scan", "type", "lrange"})


def _pg_base() -> str:
    url = os.environ.get("MODELPRESS_TEST_DATABASE_URL")
    if not url:
        raise RuntimeError("MODELPRESS_TEST_DATABASE_URL is not set: the plan is for PostgreSQL")
    return url


def _pg_counters(base_url: str, database: str) -> dict[str, int]:
    from sqlalchemy import create_engine, text

    engine = create_engine(base_url)
    try:
        with engine.connect() as conn:
            conn.execute(text("SELECT pg_stat_clear_snapshot()"))
            row = conn.execute(
                text(
                    "SELECT xact_commit + xact_rollback, tup_returned + tup_fetched, "
                    "tup_inserted + tup_updated + tup_deleted FROM pg_stat_database "
                    "WHERE datname = :db"
                ),
                {"db": database},
            ).one()
    finally:
        engine.dispose()
    return {"transactions": int(row[0]), "rows_read": int(row[1]), "rows_written": int(row[2])}


class _Sampler:
    """Peak and mean of the deployment's PostgreSQL connections and Redis clients."""

    def __init__(self, base_url: str, database: str, broker_url: str) -> None:
        self.base_url, self.database, self.broker_url = base_url, database, broker_url
        self.pg: list[int] = []
        self.redis: list[int] = []
        self.queued_bytes: list[tuple[int, int]] = []  # (messages, bytes) in the broker's lists
        self._stop = threading.Event()

    def _run(self) -> None:
        import redis
        from sqlalchemy import create_engine, text

        engine = create_engine(self.base_url)
        client = redis.Redis.from_url(self.broker_url)
        query = text("SELECT count(*) FROM pg_stat_activity WHERE datname = :db")
        with engine.connect() as conn:
            while not self._stop.wait(SAMPLE_S):
                self.pg.append(int(conn.execute(query, {"db": self.database}).scalar_one()))
                conn.commit()
                self.redis.append(int(client.info("clients")["connected_clients"]))
                self.queued_bytes.append(_queued(client))
        engine.dispose()

    @contextmanager
    def running(self) -> Iterator[_Sampler]:
        thread = threading.Thread(target=self._run, daemon=True)
        thread.start()
        try:
            yield self
        finally:
            self._stop.set()
            thread.join()


def _redis_commands(broker_url: str) -> dict[str, int]:
    import redis

    stats = redis.Redis.from_url(broker_url).info("commandstats")
    return {k.removeprefix("cmdstat_"): int(v["calls"]) for k, v in stats.items()}


def _queued(client: Any) -> tuple[int, int]:
    """Messages waiting in the broker's lists (Celery's queues) and their bytes."""
    messages = size = 0
    for key in client.scan_iter(count=1000):
        if client.type(key) == b"list":
            items = client.lrange(key, 0, -1)
            messages += len(items)
            size += sum(len(i) for i in items)
    return messages, size


def _api_requests(client: httpx.Client) -> int:
    text = client.get("/metrics").text
    # Label values hold route templates with braces ("/v1/jobs/{job_id}").
    pattern = re.compile(r"^modelpress_http_requests_total\{.*\} ([0-9.e+]+)$", re.M)
    return int(sum(float(v) for v in pattern.findall(text)))


def _dir_files(root: Path) -> tuple[int, int]:
    """Bytes and files under ``root``: what a job stores (an S3 deployment PUTs each file)."""
    files = [p for p in root.rglob("*") if p.is_file()]
    return sum(p.stat().st_size for p in files), len(files)


def _one_job(stack: Stack, model_id: str) -> dict[str, Any]:
    """Submit, follow the event stream to its end, download the artifact."""
    with stack.client() as client:
        started = time.monotonic()
        job = client.post("/v1/jobs", json={"model_id": model_id, "recipe": SMALL_RECIPE})
        job_id = job.raise_for_status().json()["id"]
        events = 0
        with client.stream("GET", f"/v1/jobs/{job_id}/events", timeout=600) as stream:
            for line in stream.iter_lines():
                events += line.startswith("event:")
        job = client.get(f"/v1/jobs/{job_id}").json()
        while job["status"] not in TERMINAL:  # a stream closed at its time limit: resume polling
            time.sleep(1)
            job = client.get(f"/v1/jobs/{job_id}").json()
        status = job["status"]
        artifact = client.get(f"/v1/jobs/{job_id}/artifact") if status == "succeeded" else None
        return {
            "status": status,
            "wall_s": time.monotonic() - started,
            "events": events,
            "artifact_bytes": len(artifact.content) if artifact is not None else 0,
            "error": job.get("error"),
        }


@contextmanager
def _deployment(work: Path, workers: int) -> Iterator[Stack]:
    import pytest

    try:
        with running_stack("scaleout", work) as stack:
            for n in range(2, workers + 1):
                stack.start_worker(f"worker{n}")
            yield stack
    except pytest.skip.Exception as exc:
        raise RuntimeError(f"no deployment to measure: {exc.msg}") from None


def measure(work: Path, workers: int, jobs: int) -> dict[str, Any]:
    from tests.fixtures.helpers import digits_upload, upload_ready

    base = _pg_base()
    with _deployment(work / f"w{workers}", workers) as stack, stack.client() as client:
        model_id = upload_ready(client, digits_upload(work / f"mlp-{workers}"))["id"]
        database = stack.database_url.rsplit("/", 1)[-1].split("?")[0]
        broker = stack.env["MODELPRESS_BROKER_URL"]
        data_dir = Path(stack.env["MODELPRESS_DATA_DIR"])
        time.sleep(2)  # PostgreSQL publishes a backend's counters when it goes idle
        pg0, redis0 = _pg_counters(base, database), _redis_commands(broker)
        api0, (bytes0, files0), load0 = _api_requests(client), _dir_files(data_dir), load_average()
        sampler = _Sampler(base, database, broker)
        started = time.monotonic()
        with sampler.running(), ThreadPoolExecutor(max_workers=jobs) as pool:
            done = list(pool.map(lambda _: _one_job(stack, model_id), range(jobs)))
        wall = time.monotonic() - started
        time.sleep(2)
        pg1, redis1 = _pg_counters(base, database), _redis_commands(broker)
        api1 = _api_requests(client) - 1  # this scrape's own request counts after it answers
        bytes1, files1 = _dir_files(data_dir)
    calls = {
        k: v - redis0.get(k, 0)
        for k, v in redis1.items()
        if v - redis0.get(k, 0) > 0 and k not in SAMPLER_COMMANDS
    }
    succeeded = sum(d["status"] == "succeeded" for d in done)
    return {
        "workers": workers,
        "jobs": jobs,
        "succeeded": succeeded,
        "errors": sorted({str(d["error"])[:300] for d in done if d["status"] != "succeeded"}),
        "wall_s": round(wall, 1),
        "jobs_per_minute": round(succeeded / wall * 60, 2),
        "job_wall_s_median": round(sorted(d["wall_s"] for d in done)[len(done) // 2], 2),
        "load_average": [load0, load_average()],
        "per_job": {
            "db_transactions": round((pg1["transactions"] - pg0["transactions"]) / jobs, 1),
            "db_rows_read": round((pg1["rows_read"] - pg0["rows_read"]) / jobs, 1),
            "db_rows_written": round((pg1["rows_written"] - pg0["rows_written"]) / jobs, 1),
            "redis_commands": round(sum(calls.values()) / jobs, 1),
            "api_requests": round((api1 - api0) / jobs, 1),
            "events_streamed": round(sum(d["events"] for d in done) / jobs, 1),
            "bytes_stored": round((bytes1 - bytes0) / jobs),
            "files_stored": round((files1 - files0) / jobs, 1),
            "artifact_bytes": round(sum(d["artifact_bytes"] for d in done) / jobs),
        },
        "redis_commands_top": dict(sorted(calls.items(), key=lambda kv: -kv[1])[:8]),
        "db_connections": {"peak": max(sampler.pg, default=0), "samples": len(sampler.pg)},
        "redis_clients_peak": max(sampler.redis, default=0),
        # Every job is submitted at once: the fullest sample holds most of them queued.
        "queued_message_bytes": _per_message(sampler.queued_bytes),
    }


def _per_message(samples: list[tuple[int, int]]) -> int:
    messages, size = max(samples, default=(0, 0))
    return round(size / messages) if messages else 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--jobs", type=int, default=JOBS)
    parser.add_argument("--workers", type=int, nargs="+", default=list(WORKERS))
    parser.add_argument("--out", type=Path, default=Path("docs/capacity.json"))
    parser.add_argument("--render", action="store_true", help="only re-render docs/scaling.md")
    args = parser.parse_args()
    page = args.out.with_name("scaling.md")
    if not args.render:
        import tempfile

        started, load_start, clock = time.time(), load_average(), time.monotonic()
        with tempfile.TemporaryDirectory(prefix="modelpress-capacity-") as tmp:
            runs = [measure(Path(tmp), n, args.jobs) for n in args.workers]
        _, run = provenance(
            started=started,
            load_start=load_start,
            wall_s=time.monotonic() - clock,
            argv=[],
            machine=machine(),
            techniques=[],
        )
        run["command"] = "MODELPRESS_TEST_DATABASE_URL=... MODELPRESS_TEST_BROKER_URL=... " + (
            ".venv/bin/python -m bench.capacity"
        )
        args.out.write_text(json.dumps({"run": run, "runs": runs}, indent=1) + "\n")
    from bench.capacity_plan import render

    page.write_text(render(json.loads(args.out.read_text())))
    print(f"wrote {args.out} and {page}")


if __name__ == "__main__":
    main()
