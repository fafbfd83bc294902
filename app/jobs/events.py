"""Server-sent events for jobs: state changes and log lines until the job ends.

One poller per process reads every watched job in one transaction a tick and fans the rows out
to all streams, so the database's load does not grow with the number of streams; every
``MODELPRESS_EVENT_STREAM_RECHECK_S`` the same read checks the streams' API keys, and a stream
whose key was revoked or deleted ends. Streams are capped in number per process (past the cap:
503 with Retry-After) and per tenant below that (past its share: 429), so one tenant cannot
take every stream; and in lifetime (the client reconnects with Last-Event-ID and resumes after
the last log line it got).
"""

from __future__ import annotations

import asyncio
import json
import logging
import threading
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

from starlette.concurrency import run_in_threadpool
from starlette.responses import StreamingResponse
from starlette.types import Receive, Scope, Send

from app.auth import repository as auth_repository
from app.db.models import JobStatus
from app.db.session import get_sessionmaker
from app.errors import AppError
from app.jobs import repository
from app.jobs.schemas import JobEventRead
from app.settings import get_settings

POLL_S = 0.5
KEEPALIVE_S = 15.0
LOGS_PER_TICK = 500
# Only ids we issued come back: ASCII digits (str.isdigit() also takes "²") that fit a BIGINT.
LAST_EVENT_ID_PATTERN = r"^[0-9]{1,18}$"

log = logging.getLogger("modelpress.events")
Row = dict[str, object]


class TooManyStreams(AppError):
    status, slug, title = 503, "too-many-streams", "Too many event streams"
    retry_after_s = 5


class TooManyTenantStreams(AppError):
    status, slug, title = 429, "too-many-tenant-streams", "Too many event streams for this tenant"
    retry_after_s = 5


@dataclass(frozen=True)
class _Tick:
    states: dict[str, Row]
    logs: dict[str, list[Row]]
    cursors: dict[str, int]
    complete: bool  # every log line after the cursors is in ``logs``
    active_keys: frozenset[str] | None = None  # None: keys were not checked this tick


def _read(cursors: dict[str, int], key_ids: frozenset[str] | None = None) -> _Tick:
    """State first, then logs: a job's final log line is committed with its final state. With
    ``key_ids``, also which of those keys are still active (not revoked, not deleted)."""
    with get_sessionmaker()() as session:
        active = None
        if key_ids is not None:
            active = auth_repository.active_key_ids(session, key_ids)
        jobs = repository.states(session, list(cursors))
        rows = repository.events_after(session, cursors, limit=LOGS_PER_TICK)
        logs: dict[str, list[Row]] = {}
        for row in rows:
            logs.setdefault(row.job_id, []).append(
                JobEventRead.model_validate(row).model_dump(mode="json")
            )
    states: dict[str, Row] = {
        j.id: {
            "status": str(j.status),
            "phase": j.phase,
            "progress": j.progress,
            "attempts": j.attempts,
            "error": j.error,
        }
        for j in jobs
    }
    return _Tick(states, logs, cursors, complete=len(rows) < LOGS_PER_TICK, active_keys=active)


@dataclass(eq=False)
class _Watcher:
    job_id: str
    after_id: int
    key_id: str | None = None  # the API key that opened the stream; None: no key was sent
    wake: asyncio.Event = field(default_factory=asyncio.Event)
    tick: _Tick | None = None


class _Poller:
    """The one loop per process that reads the database for every open stream."""

    def __init__(self) -> None:
        self._watchers: dict[str, set[_Watcher]] = {}
        self._task: asyncio.Task[None] | None = None

    def add(self, watcher: _Watcher) -> None:
        self._watchers.setdefault(watcher.job_id, set()).add(watcher)
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._run())

    def remove(self, watcher: _Watcher) -> None:
        watching = self._watchers.get(watcher.job_id, set())
        watching.discard(watcher)
        if not watching:
            self._watchers.pop(watcher.job_id, None)

    def _key_ids(self) -> frozenset[str] | None:
        keys = {w.key_id for ws in self._watchers.values() for w in ws if w.key_id is not None}
        return frozenset(keys) or None

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        recheck_s = get_settings().events.event_stream_recheck_s
        next_recheck = loop.time() + recheck_s
        while self._watchers:
            cursors = {job: min(w.after_id for w in ws) for job, ws in self._watchers.items()}
            key_ids = self._key_ids() if loop.time() >= next_recheck else None
            try:
                tick = await run_in_threadpool(_read, cursors, key_ids)
            except Exception:  # the database is away: streams wait, and end at their lifetime
                log.exception("reading job events failed; retrying")
            else:
                if key_ids is not None:
                    next_recheck = loop.time() + recheck_s
                for job_id, watching in self._watchers.items():
                    for watcher in watching:
                        # One that joined during the read may be behind this tick's cursor.
                        if watcher.after_id >= cursors.get(job_id, watcher.after_id + 1):
                            watcher.tick = tick
                            watcher.wake.set()
            await asyncio.sleep(POLL_S)


class _Slots:
    """Open streams in this process, in all and by tenant (None: callers without a key, one
    tenant). Taken in a worker thread, given back on the event loop."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._used = 0
        self._by_tenant: dict[str | None, int] = {}

    def take(self, tenant: str | None, *, limit: int, tenant_limit: int) -> None:
        with self._lock:
            if self._used >= limit:  # first: with a share as large as the cap, the server is full
                raise TooManyStreams(
                    f"this server holds {limit} event streams, its maximum; retry shortly, or "
                    "poll GET /v1/jobs/{job_id}"
                )
            held = self._by_tenant.get(tenant, 0)
            if held >= tenant_limit:
                raise TooManyTenantStreams(
                    f"you hold {tenant_limit} event streams on this server, your share; close "
                    "one, retry shortly, or poll GET /v1/jobs/{job_id}"
                )
            self._used += 1
            self._by_tenant[tenant] = held + 1

    def give_back(self, tenant: str | None) -> None:
        with self._lock:
            self._used -= 1
            self._by_tenant[tenant] -= 1
            if not self._by_tenant[tenant]:
                del self._by_tenant[tenant]


_poller = _Poller()
_slots = _Slots()


def _sse(event: str, data: Row, event_id: int | None = None) -> str:
    head = f"id: {event_id}\n" if event_id is not None else ""
    return f"{head}event: {event}\ndata: {json.dumps(data)}\n\n"


async def job_event_stream(
    job_id: str, *, after_id: int, lifetime_s: float, key_id: str | None = None
) -> AsyncIterator[str]:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + lifetime_s
    watcher = _Watcher(job_id, after_id, key_id)
    _poller.add(watcher)
    try:
        last_state: Row | None = None
        quiet_since = loop.time()
        while (left := deadline - loop.time()) > 0:
            try:
                await asyncio.wait_for(watcher.wake.wait(), timeout=min(KEEPALIVE_S, left))
            except TimeoutError:
                continue
            watcher.wake.clear()
            tick = watcher.tick
            assert tick is not None
            if (
                key_id is not None
                and tick.active_keys is not None
                and key_id not in tick.active_keys
            ):
                yield _sse("end", {"reason": "key revoked"})
                return
            state = tick.states.get(job_id)
            if state is None:
                yield _sse("end", {"reason": "job deleted"})
                return
            for entry in tick.logs.get(job_id, []):
                entry_id = int(str(entry["id"]))
                if entry_id > watcher.after_id:
                    watcher.after_id = entry_id
                    yield _sse("log", entry, entry_id)
                    quiet_since = loop.time()
            if state != last_state:
                yield _sse("state", state)
                last_state, quiet_since = state, loop.time()
            if JobStatus(str(state["status"])).terminal and tick.complete:
                yield _sse("end", {"status": state["status"]})
                return
            if loop.time() - quiet_since >= KEEPALIVE_S:
                yield ": keep-alive\n\n"
                quiet_since = loop.time()
    finally:
        _poller.remove(watcher)


class _EventStreamResponse(StreamingResponse):
    def __init__(self, content: AsyncIterator[str], *, tenant: str | None) -> None:
        super().__init__(
            content,
            media_type="text/event-stream",
            headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
        )
        self.tenant = tenant

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:  # also when the client left before the first byte
            _slots.give_back(self.tenant)


def event_stream_response(
    job_id: str, *, after_id: int, tenant: str | None = None, key_id: str | None = None
) -> StreamingResponse:
    """Raises TooManyTenantStreams past the tenant's share, TooManyStreams past the per-process
    cap. A stream opened with ``key_id`` ends when that key is revoked or deleted."""
    settings = get_settings().events
    _slots.take(
        tenant, limit=settings.event_streams_max, tenant_limit=settings.tenant_streams_max()
    )
    return _EventStreamResponse(
        job_event_stream(
            job_id, after_id=after_id, lifetime_s=settings.event_stream_max_s, key_id=key_id
        ),
        tenant=tenant,
    )
