from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from sqlalchemy import text

from app.db.session import get_engine
from app.storage import get_storage

router = APIRouter(tags=["health"])


@router.get("/healthz")
def healthz() -> dict[str, str]:
    return {"status": "ok"}


def _check_broker() -> None:
    from workers.celery_app import celery_app

    with celery_app.connection_for_write() as conn:
        conn.ensure_connection(max_retries=1, timeout=2)


@router.get("/readyz", responses={503: {"description": "A dependency is unreachable"}})
def readyz() -> JSONResponse:
    checks: dict[str, str] = {}

    def run(name: str, fn: object) -> None:
        try:
            fn()  # type: ignore[operator]
            checks[name] = "ok"
        except Exception as exc:  # any failure means "not ready", with the reason
            checks[name] = f"error: {type(exc).__name__}: {exc}"

    def db() -> None:
        with get_engine().connect() as conn:
            conn.execute(text("SELECT 1"))

    run("database", db)
    run("broker", _check_broker)
    run("storage", lambda: get_storage().ping())
    ready = all(v == "ok" for v in checks.values())
    return JSONResponse(
        {"status": "ready" if ready else "not ready", "checks": checks},
        status_code=200 if ready else 503,
    )
