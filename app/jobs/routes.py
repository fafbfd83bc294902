from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Header, Query, Response
from fastapi.responses import PlainTextResponse, StreamingResponse
from sqlalchemy.orm import Session

from app.db.models import Job, JobStatus
from app.deps import Limit, Offset, SessionDep
from app.errors import problem_responses
from app.jobs import service
from app.jobs.artifacts import ARCHIVES, media_type
from app.jobs.events import LAST_EVENT_ID_PATTERN, event_stream_response
from app.jobs.schemas import JobCreate, JobRead, JobReport
from app.openapi import LOCATION, binary_content
from app.pagination import Page
from app.results import service as results
from app.results.routes import ResultQueryDep
from compressor.report import CompressionReport

router = APIRouter(prefix="/v1/jobs", tags=["jobs"])

# Each archive's type, then what media_type() falls back to.
ARTIFACT_MEDIA_TYPES = (*(media for _, media in ARCHIVES.values()), "application/octet-stream")
ARTIFACT_HEADERS = {
    "X-Checksum-Sha256": {"description": "hex SHA-256 of the body", "schema": {"type": "string"}},
    "Content-Disposition": {"description": "a file name for it", "schema": {"type": "string"}},
}


def _read(session: Session, job: Job) -> JobRead:
    return JobRead.model_validate(job).model_copy(
        update={
            "waiting_reason": service.waiting_reason(session, job),
            "eta_s": service.eta_seconds(job),
            "warnings": list((job.report or {}).get("warnings", [])),
        }
    )


@router.post(
    "",
    status_code=202,
    response_model=JobRead,
    responses={202: {"headers": LOCATION}, **problem_responses(404, 409, 422, 429)},
    summary="Submit a compression job",
)
def create_job(body: JobCreate, session: SessionDep, response: Response) -> JobRead:
    job = service.submit_job(session, request=body)
    response.headers["Location"] = f"/v1/jobs/{job.id}"
    return _read(session, job)


@router.get("", response_model=Page[JobRead], responses=problem_responses(422))
def list_jobs(
    session: SessionDep,
    query: ResultQueryDep,
    status: Annotated[JobStatus | None, Query()] = None,
    model_id: Annotated[str | None, Query()] = None,
    limit: Limit = 50,
    offset: Offset = 0,
) -> Page[JobRead]:
    """Newest first by default; ``sort`` and the min/max filters rank by report figures."""
    rows, total = results.list_jobs(
        session, status=status, model_id=model_id, query=query, limit=limit, offset=offset
    )
    items = [_read(session, r) for r in rows]
    return Page[JobRead](items=items, total=total, limit=limit, offset=offset)


@router.get("/{job_id}", response_model=JobRead, responses=problem_responses(404))
def get_job(job_id: str, session: SessionDep) -> JobRead:
    return _read(session, service.get_job(session, job_id=job_id))


@router.post("/{job_id}/cancel", response_model=JobRead, responses=problem_responses(404, 409))
def cancel_job(job_id: str, session: SessionDep) -> JobRead:
    return _read(session, service.cancel_job(session, job_id=job_id))


@router.get("/{job_id}/report", response_model=JobReport, responses=problem_responses(404, 409))
def get_job_report(job_id: str, session: SessionDep) -> JobReport:
    """The engine's typed CompressionReport (schema version in ``report.version``)."""
    stored = service.get_report(session, job_id=job_id)
    return JobReport(job_id=job_id, report=CompressionReport.model_validate(stored))


@router.get(
    "/{job_id}/artifact",
    response_class=StreamingResponse,
    responses={
        200: {
            "description": "The compressed model, as an archive",
            "headers": ARTIFACT_HEADERS,
            **binary_content(*ARTIFACT_MEDIA_TYPES),
        },
        **problem_responses(404, 409),
    },
)
def download_artifact(job_id: str, session: SessionDep) -> StreamingResponse:
    job, chunks = service.artifact_stream(session, job_id=job_id)
    key = job.artifact_key or ""
    extension = key.rsplit("/", 1)[-1].removeprefix("artifact")
    headers = {
        "Content-Disposition": f'attachment; filename="modelpress-{job.id}{extension}"',
        "Content-Length": str(job.artifact_bytes),
        "X-Checksum-Sha256": job.artifact_sha256 or "",
    }
    return StreamingResponse(chunks, media_type=media_type(key), headers=headers)


@router.get(
    "/{job_id}/events",
    response_class=StreamingResponse,
    responses={200: {"content": {"text/event-stream": {}}}, **problem_responses(404, 503)},
    summary="Server-sent events: state changes and log lines until the job ends",
    description="A stream closes after `MODELPRESS_EVENT_STREAM_MAX_S`; reconnect with the "
    "`Last-Event-ID` of the last log line to resume after it. 503 with Retry-After when the "
    "server holds its maximum of streams.",
)
def stream_job_events(
    job_id: str,
    session: SessionDep,
    last_event_id: Annotated[str | None, Header(pattern=LAST_EVENT_ID_PATTERN)] = None,
) -> StreamingResponse:
    service.get_job(session, job_id=job_id)
    # The stream outlives this function; a request session left open would hold a pooled
    # connection for as long (15 streams exhausted PostgreSQL's pool). The poller reads alone.
    session.close()
    return event_stream_response(job_id, after_id=int(last_event_id or 0))


@router.get(
    "/{job_id}/logs",
    response_class=PlainTextResponse,
    responses=problem_responses(404),
    summary="The job's log, one line per event",
)
def get_job_logs(job_id: str, session: SessionDep) -> PlainTextResponse:
    events = service.job_events(session, job_id=job_id)
    lines = [f"{e.created_at.isoformat()} {e.level.upper():7} {e.message}" for e in events]
    return PlainTextResponse("\n".join(lines) + ("\n" if lines else ""))
