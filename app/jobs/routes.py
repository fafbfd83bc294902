from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Query, Response
from fastapi.responses import PlainTextResponse, StreamingResponse
from sqlalchemy.orm import Session

from app.auth.caller import CallerDep
from app.db.models import Job, JobStatus
from app.deps import Limit, Offset, SessionDep
from app.errors import problem_responses
from app.idempotency import IdempotencyKeyHeader
from app.jobs import service
from app.jobs.artifacts import ARCHIVES
from app.jobs.delivery import ARTIFACT_HEADERS, CONTENT_RANGE, Conditions
from app.jobs.events import LAST_EVENT_ID_PATTERN, event_stream_response
from app.jobs.schemas import JobCreate, JobPhases, JobRead, JobReport, PhaseSeconds
from app.labels import LabelFiltersDep
from app.openapi import LOCATION, binary_content
from app.pagination import Page
from app.results import service as results
from app.results.routes import ResultQueryDep
from compressor.report import CompressionReport

router = APIRouter(prefix="/v1/jobs", tags=["jobs"])

# Each archive's type, then what media_type() falls back to.
ARTIFACT_MEDIA_TYPES = (*(media for _, media in ARCHIVES.values()), "application/octet-stream")


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
def create_job(
    body: JobCreate,
    session: SessionDep,
    response: Response,
    idempotency_key: IdempotencyKeyHeader = None,
) -> JobRead:
    job = service.submit_job(session, request=body, idempotency_key=idempotency_key)
    response.headers["Location"] = f"/v1/jobs/{job.id}"
    return _read(session, job)


@router.get("", response_model=Page[JobRead], responses=problem_responses(422))
def list_jobs(
    session: SessionDep,
    query: ResultQueryDep,
    labels: LabelFiltersDep,
    status: Annotated[
        list[JobStatus] | None, Query(description="repeat to list jobs in any of several")
    ] = None,
    model_id: Annotated[str | None, Query()] = None,
    parent_id: Annotated[
        str | None, Query(description="a goal job's id: list its candidate jobs")
    ] = None,
    limit: Limit = 50,
    offset: Offset = 0,
) -> Page[JobRead]:
    """Newest first by default; ``sort`` and the min/max filters rank by report figures."""
    rows, total = results.list_jobs(
        session,
        statuses=status,
        model_id=model_id,
        parent_id=parent_id,
        labels=labels,
        query=query,
        limit=limit,
        offset=offset,
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
    _, times = service.get_phases(session, job_id=job_id)
    return JobReport(
        job_id=job_id,
        report=CompressionReport.model_validate(stored),
        phases=[PhaseSeconds(phase=t.phase, seconds=t.seconds) for t in times],
    )


@router.get("/{job_id}/phases", response_model=JobPhases, responses=problem_responses(404))
def get_job_phases(job_id: str, session: SessionDep) -> JobPhases:
    """Where the job's time went: queue wait, process start, then each phase, in seconds."""
    job, times = service.get_phases(session, job_id=job_id)
    return JobPhases(
        job_id=job_id,
        status=job.status,
        total_seconds=round(sum(t.seconds for t in times), 3),
        phases=[PhaseSeconds(phase=t.phase, seconds=t.seconds) for t in times],
    )


def _conditions(
    range_: Annotated[str | None, Header(alias="Range")] = None,
    if_range: Annotated[str | None, Header(alias="If-Range")] = None,
    if_none_match: Annotated[str | None, Header(alias="If-None-Match")] = None,
) -> Conditions:
    return Conditions(range=range_, if_range=if_range, if_none_match=if_none_match)


ConditionsDep = Annotated[Conditions, Depends(_conditions)]
_ARTIFACT_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "The compressed model, as an archive",
        "headers": ARTIFACT_HEADERS,
        **binary_content(*ARTIFACT_MEDIA_TYPES),
    },
    206: {
        "description": "One byte range of the archive (`Range: bytes=...`)",
        "headers": {**ARTIFACT_HEADERS, **CONTENT_RANGE},
        **binary_content(*ARTIFACT_MEDIA_TYPES),
    },
    304: {"description": "Not modified: `If-None-Match` holds the current ETag"},
    **problem_responses(404, 409),
    416: {**problem_responses(416)[416], "headers": CONTENT_RANGE},
}


@router.get(
    "/{job_id}/artifact",
    response_class=StreamingResponse,
    responses={
        **_ARTIFACT_RESPONSES,
        307: {
            "description": "With S3 presigned downloads on: the archive at a short-lived URL",
            "headers": {"Location": {"schema": {"type": "string"}}},
        },
    },
)
def download_artifact(job_id: str, session: SessionDep, conditions: ConditionsDep) -> Response:
    """Supports one byte range, ``If-Range`` and ``If-None-Match`` (the ETag is the sha256)."""
    return service.artifact_response(session, job_id=job_id, conditions=conditions, with_body=True)


@router.head("/{job_id}/artifact", response_class=Response, responses=_ARTIFACT_RESPONSES)
def head_artifact(job_id: str, session: SessionDep, conditions: ConditionsDep) -> Response:
    """The download's status and headers without its body."""
    return service.artifact_response(session, job_id=job_id, conditions=conditions, with_body=False)


@router.get(
    "/{job_id}/events",
    response_class=StreamingResponse,
    responses={200: {"content": {"text/event-stream": {}}}, **problem_responses(404, 429, 503)},
    summary="Server-sent events: state changes and log lines until the job ends",
    description="A stream closes after `MODELPRESS_EVENT_STREAM_MAX_S`; reconnect with the "
    "`Last-Event-ID` of the last log line to resume after it. It ends with `event: end` and "
    '`{"reason": "key revoked"}` once its API key is revoked (checked every '
    "`MODELPRESS_EVENT_STREAM_RECHECK_S`). 429 with Retry-After when the caller's tenant holds "
    "its share of streams (`MODELPRESS_EVENT_STREAMS_PER_TENANT_MAX`), 503 with Retry-After "
    "when the server holds its maximum.",
)
def stream_job_events(
    job_id: str,
    session: SessionDep,
    caller: CallerDep,
    last_event_id: Annotated[str | None, Header(pattern=LAST_EVENT_ID_PATTERN)] = None,
) -> StreamingResponse:
    service.get_job(session, job_id=job_id)
    # The stream outlives this function; a request session left open would hold a pooled
    # connection for as long (15 streams exhausted PostgreSQL's pool). The poller reads alone.
    session.close()
    return event_stream_response(
        job_id, after_id=int(last_event_id or 0), tenant=caller.tenant, key_id=caller.key_id
    )


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
