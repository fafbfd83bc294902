"""docs/scaling.md, rendered from docs/capacity.json (bench/capacity.py) and the settings' own
defaults: every measured figure comes from the JSON and every step of the arithmetic is shown,
so the plan moves when a re-run moves the figures. tests/test_scaling_doc.py checks the page is
this render of the committed JSON."""

from __future__ import annotations

import math
from typing import Any

from app.db.session import POOL_MAX_OVERFLOW, POOL_SIZE
from app.jobs.events import POLL_S
from app.settings import EventStreamSettings, WorkerSettings

JOBS_PER_DAY = 10_000
CPU_WORKERS, GPU_WORKERS = 20, 100
STREAMS = 1_000
PEAK_OVER_MEAN = 10  # the busiest minute against the day's mean: an assumption, stated as one
PG_MAX_CONNECTIONS = 100  # PostgreSQL's default max_connections


def _fit(xs: list[float], ys: list[float]) -> tuple[float, float]:
    """Least-squares line y = a + b x."""
    n = len(xs)
    mx, my = sum(xs) / n, sum(ys) / n
    var = sum((x - mx) ** 2 for x in xs)
    b = sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / var if var else 0.0
    return my - b * mx, b


def _measured(doc: dict[str, Any]) -> list[str]:
    lines = [
        "| workers | jobs/min | median job, submit to artifact | load average (start, end) "
        "| DB transactions / job | DB rows read / job | DB rows written / job "
        "| Redis commands / job | API requests / job | events streamed / job "
        "| stored bytes / job | stored files / job | DB connections, peak | Redis clients, peak |",
        "|" + "---|" * 14,
    ]
    for r in doc["runs"]:
        p = r["per_job"]
        lines.append(
            f"| {r['workers']} | {r['jobs_per_minute']} | {r['job_wall_s_median']} s "
            f"| {r['load_average'][0]}, {r['load_average'][1]} | {p['db_transactions']} "
            f"| {p['db_rows_read']} | {p['db_rows_written']} | {p['redis_commands']} "
            f"| {p['api_requests']} | {p['events_streamed']} | {p['bytes_stored']:,} "
            f"| {p['files_stored']} | {r['db_connections']['peak']} | {r['redis_clients_peak']} |"
        )
    top = doc["runs"][-1]["redis_commands_top"]
    lines += [
        "",
        f"Each run: {doc['runs'][0]['jobs']} jobs submitted at once, each followed by its event "
        "stream to the end and its artifact downloaded. Per-job counts are the run's totals "
        "over its jobs, so they include what the deployment does meanwhile anyway (worker "
        "heartbeats, lease renewals, maintenance sweeps). Redis's busiest commands in the "
        f"{doc['runs'][-1]['workers']}-worker run: "
        + ", ".join(f"{k} {v}" for k, v in top.items())
        + ".",
    ]
    return lines


def _trend(doc: dict[str, Any]) -> list[str]:
    runs = doc["runs"]
    cores = doc["run"]["machine"].get("cores", "?")
    first, last = runs[0], runs[-1]
    steps = [
        f"{r['workers']} workers {r['jobs_per_minute'] / first['jobs_per_minute']:.2f}x"
        for r in runs[1:]
    ]
    per_core = last["jobs_per_minute"] / cores if isinstance(cores, int) else None
    return [
        f"Throughput against {first['workers']} worker(s) on this {cores}-core machine: "
        + ", ".join(steps)
        + ". A small job runs one thread but spends part of its life off the CPU (process "
        "start, database, storage, the event stream), so workers past the core count still "
        "add some throughput here, with less each step: the CPU is what they share. "
        + (
            f"At {last['workers']} workers this machine gives {per_core:.1f} small jobs a minute "
            "per core; a pool's small-job rate extrapolates as its cores times that, and the "
            "per-job costs do not depend on the worker count (compare the rows). "
            if per_core is not None
            else ""
        )
        + "The load average beside each run says what else the machine was doing.",
    ]


def _plan(doc: dict[str, Any]) -> list[str]:
    runs = doc["runs"]
    per_job = {k: max(r["per_job"][k] for r in runs) for k in runs[0]["per_job"]}
    mean_s = JOBS_PER_DAY / 86_400
    peak_s = mean_s * PEAK_OVER_MEAN
    workers = CPU_WORKERS + GPU_WORKERS
    a, b = _fit([r["workers"] for r in runs], [r["db_connections"]["peak"] for r in runs])
    connections = a + b * workers
    lease = WorkerSettings().cancel_poll_s
    stream_max = EventStreamSettings().event_streams_max
    api_replicas = math.ceil(STREAMS / stream_max)
    pool = POOL_SIZE + POOL_MAX_OVERFLOW
    redis_per_job = max(r["queued_message_bytes"] for r in runs)
    return [
        f"Inputs: {JOBS_PER_DAY:,} jobs a day, {CPU_WORKERS} CPU workers and {GPU_WORKERS} GPU "
        f"workers, {STREAMS:,} event streams open at once. The day's mean is "
        f"{JOBS_PER_DAY:,} / 86,400 s = {mean_s:.3f} jobs/s; the plan sizes for a busiest "
        f"minute {PEAK_OVER_MEAN}x that, {peak_s:.2f} jobs/s (an assumption, not a measurement). "
        "Per-job figures are the largest of the runs above.",
        "",
        "| component | arithmetic | what it must hold |",
        "|---|---|---|",
        f"| PostgreSQL transactions | {per_job['db_transactions']} per job x {peak_s:.2f} jobs/s "
        f"+ lease renewals: {workers} busy workers / {lease} s + event pollers: "
        f"{api_replicas} API processes / {POLL_S} s "
        f"| {per_job['db_transactions'] * peak_s + workers / lease + api_replicas / POLL_S:.0f} "
        "transactions/s at the busiest minute |",
        f"| PostgreSQL rows | read {per_job['db_rows_read']} and written "
        f"{per_job['db_rows_written']} per job x {peak_s:.2f} jobs/s "
        f"| {per_job['db_rows_read'] * peak_s:.0f} rows read/s, "
        f"{per_job['db_rows_written'] * peak_s:.0f} written/s |",
        f"| PostgreSQL connections | measured peak = {a:.1f} + {b:.2f} per worker (least "
        f"squares over the runs); x {workers} workers; each process's pool is {POOL_SIZE} + "
        f"{POOL_MAX_OVERFLOW} overflow = {pool} at most | {connections:.0f} connections, against "
        f"PostgreSQL's default max_connections {PG_MAX_CONNECTIONS} |",
        f"| Redis commands | {per_job['redis_commands']} per job x {peak_s:.2f} jobs/s "
        f"| {per_job['redis_commands'] * peak_s:.0f} commands/s |",
        f"| Redis memory | {redis_per_job:,.0f} bytes per queued job (the broker's messages, "
        f"measured while queued) x {JOBS_PER_DAY:,} (a whole day queued at once) "
        f"| {redis_per_job * JOBS_PER_DAY / 2**20:.1f} MiB |",
        f"| Object storage | {per_job['files_stored']} files and {per_job['bytes_stored']:,} "
        f"bytes stored per small job x {peak_s:.2f} jobs/s; one GET per download "
        f"| {per_job['files_stored'] * peak_s:.1f} PUT/s; bytes scale with the model, not "
        "the job count |",
        f"| API | {per_job['api_requests']} requests per job x {peak_s:.2f} jobs/s; "
        f"{STREAMS:,} streams / {stream_max} per process (MODELPRESS_EVENT_STREAMS_MAX) "
        f"| {per_job['api_requests'] * peak_s:.1f} requests/s and at least {api_replicas} API "
        "processes for the streams |",
    ]


def _saturates(doc: dict[str, Any]) -> list[str]:
    runs = doc["runs"]
    a, b = _fit([r["workers"] for r in runs], [r["db_connections"]["peak"] for r in runs])
    connections = a + b * (CPU_WORKERS + GPU_WORKERS)
    stream_max = EventStreamSettings().event_streams_max
    first = (
        f"PostgreSQL connections: {connections:.0f} wanted against {PG_MAX_CONNECTIONS}. The "
        "change that moves it: PgBouncer in transaction mode between the pods and PostgreSQL "
        "(the workers hold a connection only for short transactions, renewals included), or a "
        "smaller pool per process (app/db/session.py's pool size, a constant today)."
        if connections > PG_MAX_CONNECTIONS
        else f"Nothing shared: {connections:.0f} PostgreSQL connections fit in "
        f"{PG_MAX_CONNECTIONS}."
    )
    return [
        f"- **First:** {first}",
        f"- **Next:** event streams, {stream_max} per API process "
        "(MODELPRESS_EVENT_STREAMS_MAX); past it new streams get 503 with Retry-After. Raise "
        "the setting or the API replicas (deploy/kubernetes: the API Deployment's replicas).",
        "- **Not near a limit:** the transaction, row, Redis and storage rates above are small "
        "for one PostgreSQL and one Redis; compute, not the shared parts, bounds the job rate.",
        "",
        "Limits of this extrapolation: one 2-core machine, one small job type (digits MLP "
        "int8), a few dozen jobs a run. Per-job database, Redis and API costs are counts per "
        "job and carry over; what grows with a job's length does not show here: lease renewals "
        "(one transaction per running job per MODELPRESS_CANCEL_POLL_S, counted above for "
        "every worker busy) and progress events (a long job logs more lines). Stored bytes "
        "scale with the model (an LLM artifact is hundreds of MB, a digits MLP a few KB).",
    ]


def render(doc: dict[str, Any]) -> str:
    run = doc["run"]
    lines = [
        "# Scaling and capacity plan",
        "",
        f"Generated from `docs/capacity.json`, written by `{run['command']}` on {run['date']} "
        f"(commit {run['commit']}"
        + (" with uncommitted changes" if run.get("uncommitted_changes") else "")
        + f", load average {run['load_average_start']} at start and "
        f"{run['load_average_end']} at end, {run['wall_min']} min). Re-run it to move every "
        "figure below; `python -m bench.capacity --render` re-renders this page alone.",
        "",
        "## Measured: what one job costs, at 1x, 2x and 4x workers",
        "",
        *_measured(doc),
        "",
        "## The trend",
        "",
        *_trend(doc),
        "",
        f"## The plan: {CPU_WORKERS} CPU and {GPU_WORKERS} GPU workers, {JOBS_PER_DAY:,} jobs "
        f"a day, {STREAMS:,} event streams",
        "",
        *_plan(doc),
        "",
        "## What saturates first",
        "",
        *_saturates(doc),
        "",
    ]
    return "\n".join(lines)
