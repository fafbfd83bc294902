from __future__ import annotations

import logging

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from sqlalchemy import text

from app.broker import get_celery, queue_names
from app.db.session import get_engine, get_sessionmaker
from app.pools.repository import queues_without_live_worker
from app.settings import get_settings
from app.storage import get_storage

router = APIRouter(tags=["health"])
log = logging.getLogger("modelpress.health")


@router.get("/healthz")
def healthz() -> dict[str, str]:
    return {"status": "ok"}


def _check_broker() -> None:
    with get_celery().connection_for_write() as conn:
        conn.ensure_connection(max_retries=1, timeout=2)


def _queues_without_worker() -> list[str] | None:
    """Queues no live worker consumes: jobs sent there wait. None when the database is away."""
    try:
        with get_sessionmaker()() as session:
            return queues_without_live_worker(
                session, queue_names(), stale_after_s=get_settings().worker.stale_after_s
            )
    except Exception:  # the database check above already reports why
        return None


@router.get(
    "/readyz",
    responses={503: {"description": "A dependency is unreachable"}},
    description="200 when the database, broker and storage answer, else 503. Each check "
    "says `ok` or `unavailable`; why is in the server log. "
    "`queues_without_worker` lists queues no live worker consumes (jobs there wait); "
    "it does not change the status code.",
)
def readyz() -> JSONResponse:
    checks: dict[str, str] = {}

    def run(name: str, fn: object) -> None:
        try:
            fn()  # type: ignore[operator]
            checks[name] = "ok"
        except Exception as exc:  # any failure means "not ready"
            # The reason names hosts, ports and users: the log gets it, callers do not.
            log.warning("readiness: %s unavailable: %s: %s", name, type(exc).__name__, exc)
            checks[name] = "unavailable"

    def db() -> None:
        with get_engine().connect() as conn:
            conn.execute(text("SELECT 1"))

    run("database", db)
    run("broker", _check_broker)
    run("storage", lambda: get_storage().ping())
    ready = all(v == "ok" for v in checks.values())
    return JSONResponse(
        {
            "status": "ready" if ready else "not ready",
            "checks": checks,
            "queues_without_worker": _queues_without_worker(),
        },
        status_code=200 if ready else 503,
    )
