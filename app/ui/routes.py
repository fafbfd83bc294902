"""``/ui``: server-rendered pages over the same services as the API; nothing here changes data.

A browser cannot send ``Authorization`` for ``<img>`` or ``EventSource``, so ``/ui/login`` sets
an HttpOnly, SameSite=Strict cookie scoped to ``/ui`` holding a signed, expiring session token
(app/ui/session.py), and the page's plot and event stream are served under ``/ui`` too. The API
(``/v1``) never accepts the cookie.
"""

from __future__ import annotations

import re
import secrets
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, Header, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response, StreamingResponse
from jinja2 import Environment, FileSystemLoader

from app import errors
from app.auth.caller import Caller, Unauthorized, authenticate
from app.auth.keys import find_active
from app.auth.tenancy import scope_to_tenant
from app.db.models import Job, JobStatus
from app.db.session import get_sessionmaker
from app.deps import SessionDep
from app.jobs import plot
from app.jobs import service as jobs
from app.jobs.events import LAST_EVENT_ID_PATTERN, event_stream_response
from app.jobs.plot import BUDGET_FIGURES
from app.models_upload import service as models
from app.results import service as results
from app.results.schemas import ResultQuery
from app.settings import get_settings
from app.ui import session as ui_session
from app.ui.headers import content_security_policy
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
    """The caller by ``Authorization`` header, else by session cookie; None sends the browser to
    sign in (so does a cookie that no longer holds: expired, tampered, or its key revoked)."""
    token = request.cookies.get(ui_session.COOKIE)
    if token is None or "authorization" in request.headers:
        try:
            return authenticate(request, session)
        except Unauthorized:
            return None
    key = ui_session.verify(token)
    if key is None:
        return None
    scope_to_tenant(session, key.tenant)
    return Caller(tenant=key.tenant, admin=key.admin, key_id=key.id)


UiCaller = Annotated[Caller | None, Depends(_caller)]


def _page(name: str, status_code: int = 200, **context: Any) -> HTMLResponse:
    nonce = secrets.token_urlsafe(16)
    html = templates.get_template(name).render(csp_nonce=nonce, **context)
    headers = {
        "Cache-Control": "no-store",
        "Content-Security-Policy": content_security_policy(nonce),
    }
    return HTMLResponse(html, status_code=status_code, headers=headers)


def _forget_session(response: Response) -> Response:
    response.delete_cookie(
        ui_session.COOKIE, path=ui_session.PATH, httponly=True, samesite="strict"
    )
    return response


def _to_login(request: Request) -> Response:
    response = RedirectResponse(f"/ui/login?next={request.url.path}", status_code=303)
    # A cookie that failed is dropped, or a server without authentication would keep refusing.
    return _forget_session(response) if ui_session.COOKIE in request.cookies else response


def _refused() -> Response:
    detail = "This request did not come from a page of this server, so it was refused."
    return _page("refused.html", 403, signed_in=False, detail=detail)


def _signed_in(caller: Caller) -> bool:
    return caller.tenant is not None


@router.get("/login", response_class=HTMLResponse)
def login_form(next: str = "/ui") -> HTMLResponse:
    return _page("login.html", next=next if _NEXT.fullmatch(next) else "/ui", error=None)


@router.post("/login")
def login(
    request: Request, api_key: Annotated[str, Form()], next: Annotated[str, Form()] = "/ui"
) -> Response:
    # Login CSRF: a page elsewhere must not sign this browser in with the attacker's key.
    if not ui_session.same_origin(request):
        return _refused()
    key = api_key.strip()
    with get_sessionmaker()() as lookup:
        row = find_active(lookup, key) if key else None
        token = ui_session.issue(key=row) if row is not None else None
    target = next if _NEXT.fullmatch(next) else "/ui"
    if token is None:
        return _page("login.html", 401, next=target, error="That API key is unknown or revoked.")
    response = RedirectResponse(target, status_code=303)
    response.set_cookie(
        ui_session.COOKIE,
        token,
        max_age=get_settings().auth.ui_session_max_age_s,
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
        path=ui_session.PATH,
    )
    # Earlier versions kept the raw key in this cookie, for the whole site: drop it.
    response.delete_cookie("modelpress_key", path="/", httponly=True, samesite="strict")
    return response


@router.post("/logout")
def logout(request: Request) -> Response:
    if not ui_session.same_origin(request):
        return _refused()
    return _forget_session(RedirectResponse("/ui/login", status_code=303))


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
        phases=jobs.get_phases(session, job_id=job_id)[1],
    )


@router.get("/jobs/{job_id}/plot")
def job_plot(
    job_id: str,
    session: SessionDep,
    caller: UiCaller,
    accept: Annotated[str | None, Header()] = None,
) -> Response:
    """The job page's picture: ``GET /v1/jobs/{id}/plot`` for the session cookie."""
    if caller is None:
        raise Unauthorized("sign in at /ui/login")
    fmt = plot.negotiate(accept)
    report = CompressionReport.model_validate(jobs.get_report(session, job_id=job_id))
    return Response(
        plot.render(report, job_id=job_id, fmt=fmt),
        media_type=plot.MEDIA_TYPES[fmt],
        headers={"Cache-Control": "private, max-age=3600", "Vary": "Accept"},
    )


@router.get("/jobs/{job_id}/events")
def job_events(
    job_id: str,
    session: SessionDep,
    caller: UiCaller,
    last_event_id: Annotated[str | None, Header(pattern=LAST_EVENT_ID_PATTERN)] = None,
) -> StreamingResponse:
    """The job page's live progress: ``GET /v1/jobs/{id}/events`` for the session cookie."""
    if caller is None:
        raise Unauthorized("sign in at /ui/login")
    jobs.get_job(session, job_id=job_id)
    # As in the API's route: the stream must not hold the request's pooled connection.
    session.close()
    return event_stream_response(
        job_id, after_id=int(last_event_id or 0), tenant=caller.tenant, key_id=caller.key_id
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
