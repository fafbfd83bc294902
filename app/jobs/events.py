"""Server-sent events for one job: state changes and log lines until it ends."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator

from starlette.concurrency import run_in_threadpool

from app.db.models import JobStatus
from app.db.session import get_sessionmaker
from app.jobs import repository
from app.jobs.schemas import JobEventRead

POLL_S = 0.5
KEEPALIVE_S = 15.0


def _snapshot(
    job_id: str, after_id: int
) -> tuple[dict[str, object] | None, list[dict[str, object]]]:
    with get_sessionmaker()() as session:
        job = repository.get(session, job_id)
        if job is None:
            return None, []
        state = {
            "status": str(job.status),
            "phase": job.phase,
            "progress": job.progress,
            "attempts": job.attempts,
            "error": job.error,
        }
        logs = [
            JobEventRead.model_validate(e).model_dump(mode="json")
            for e in repository.events(session, job_id, after_id=after_id)
        ]
        return state, logs


def _sse(event: str, data: dict[str, object], event_id: int | None = None) -> str:
    head = f"id: {event_id}\n" if event_id is not None else ""
    return f"{head}event: {event}\ndata: {json.dumps(data)}\n\n"


async def job_event_stream(job_id: str, *, after_id: int = 0) -> AsyncIterator[str]:
    last_state: dict[str, object] | None = None
    idle = 0.0
    while True:
        state, logs = await run_in_threadpool(_snapshot, job_id, after_id)
        if state is None:
            yield _sse("end", {"reason": "job deleted"})
            return
        for entry in logs:
            after_id = int(str(entry["id"]))
            yield _sse("log", entry, after_id)
        if state != last_state:
            yield _sse("state", state)
            last_state = state
            idle = 0.0
        if JobStatus(str(state["status"])).terminal:
            yield _sse("end", {"status": state["status"]})
            return
        await asyncio.sleep(POLL_S)
        idle += POLL_S
        if idle >= KEEPALIVE_S:
            yield ": keep-alive\n\n"
            idle = 0.0
