"""``/ui``: server-rendered pages over the same services as the API; nothing here changes data.

A browser cannot send ``Authorization`` for ``<img>`` or ``EventSource``, so ``/ui/login`` keeps
the API key in an HttpOnly, SameSite=Strict cookie that app/auth/caller.py accepts on reads only.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from jinja2 import Environment, FileSystemLoader

from app import errors
from app.auth.caller import UI_COOKIE, Caller, Unauthorized, authenticate
from app.auth.keys import find_active
from app.db.models import Job, JobStatus
from app.db.session import get_sessionmaker
from app.deps import SessionDep
from app.jobs import service as jobs
from app.jobs.plot import BUDGET_FIGURES
from app.models_upload import service as models
from app.results import service as results
from app.results.schemas import ResultQuery
from compressor.report import CompressionReport

router = APIRouter(prefix="/ui", include_in_schema=False)
LISTED = 50
# Where a sign-in may send the browser back to: a page of this UI, nothing else.
_NEXT = re.compile(r"/ui(/[A-Za-z0-9_-]+)*")

templates = Environment(
    loader=FileSystemLoader(Path(__file__).parent / "templates"), autoescape=True
)


def _megabytes(value: float | None) -> str:
    if value is None:
        return "–"
    for unit, size in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if value >= size:
            return f"{value / size:.3g} {unit}"
    return f"{int(value)} B"


def _figure(value: float | None, digits: int = 4) -> str:
    return "–" if value is None else f"{value:.{digits}g}"


templates.filters.update(size=_megabytes, figure=_figure)


def _caller(request: Request, session: SessionDep) -> Caller | None:
    """The API's caller (header or the sign-in cookie); None sends the browser to sign in."""
    try:
        return authenticate(request, session)
    except Unauthorized:
        return None


UiCaller = Annotated[Caller | None, Depends(_caller)]


def _page(name: str, status_code: int = 200, **context: Any) -> HTMLResponse:
    html = templates.get_template(name).render(**context)
    return HTMLResponse(html, status_code=status_code, headers={"Cache-Control": "no-store"})


def _to_login(request: Request) -> RedirectResponse:
    return RedirectResponse(f"/ui/login?next={request.url.path}", status_code=303)


def _signed_in(caller: Caller) -> bool:
    return caller.tenant is not None


@router.get("/login", response_class=HTMLResponse)
def login_form(next: str = "/ui") -> HTMLResponse:
    return _page("login.html", next=next if _NEXT.fullmatch(next) else "/ui", error=None)


@router.post("/login")
def login(
    request: Request, api_key: Annotated[str, Form()], next: Annotated[str, Form()] = "/ui"
) -> Response:
    key = api_key.strip()
    with get_sessionmaker()() as lookup:
        known = bool(key) and find_active(lookup, key) is not None
    target = next if _NEXT.fullmatch(next) else "/ui"
    if not known:
        return _page("login.html", 401, next=target, error="That API key is unknown or revoked.")
    response = RedirectResponse(target, status_code=303)
    response.set_cookie(
        UI_COOKIE,
        key,
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
        path="/",
    )
    return response


@router.post("/logout")
def logout() -> Response:
    response = RedirectResponse("/ui/login", status_code=303)
    response.delete_cookie(UI_COOKIE, path="/", httponly=True, samesite="strict")
    return response


@router.get("", response_class=HTMLResponse)
def index(request: Request, session: SessionDep, caller: UiCaller) -> Response:
    if caller is None:
        return _to_login(request)
    model_rows, model_total = models.list_models(session, labels=[], limit=LISTED, offset=0)
    job_rows, job_total = results.list_jobs(
        session,
        statuses=None,
        model_id=None,
        labels=[],
        query=ResultQuery(),
        limit=LISTED,
        offset=0,
    )
    return _page(
        "index.html",
        caller=caller,
        signed_in=_signed_in(caller),
        models=model_rows,
        model_total=model_total,
        jobs=[_job_row(job) for job in job_rows],
        job_total=job_total,
    )


@router.get("/jobs/{job_id}", response_class=HTMLResponse)
def job_page(job_id: str, request: Request, session: SessionDep, caller: UiCaller) -> Response:
    if caller is None:
        return _to_login(request)
    try:
        job = jobs.get_job(session, job_id=job_id)
    except errors.NotFound as exc:
        return _page("missing.html", 404, signed_in=_signed_in(caller), detail=exc.detail)
    report = None
    if job.status == JobStatus.SUCCEEDED and job.report is not None:
        report = CompressionReport.model_validate(jobs.get_report(session, job_id=job_id))
    search = report.search if report is not None else None
    return _page(
        "job.html",
        signed_in=_signed_in(caller),
        job=_job_row(job),
        report=report,
        search=search,
        budget_figure=BUDGET_FIGURES.get(search.goal.budget[0], ("budget figure", False))[0]
        if search is not None
        else None,
        warnings=list((job.report or {}).get("warnings", [])),
        terminal=JobStatus(job.status).terminal,
    )


def _job_row(job: Job) -> dict[str, Any]:
    return {
        "id": job.id,
        "model_id": job.model_id,
        "status": str(job.status),
        "phase": job.phase,
        "progress": job.progress,
        "error": job.error,
        # A goal job has no recipe until its search chose one.
        "what": results.recipe_summary(job.recipe) if job.recipe else "goal",
        "created_at": job.created_at,
        "finished_at": job.finished_at,
    }
