"""``GET /v1/jobs/{id}/plot``: a succeeded job's bytes against latency, SVG or PNG by Accept."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Header, Response

from app.deps import SessionDep
from app.errors import problem_responses
from app.jobs import plot, service
from app.openapi import binary_content
from compressor.report import CompressionReport

router = APIRouter(prefix="/v1/jobs", tags=["jobs"])


# Generic clients read a picture as bytes: openapi-python-client, for one, generates no 200
# response for image/* alone. Declaring octet-stream too lets a client generated from the spec
# alone (no content-type mapping) return the bytes; asked for it, the route sends its default.
BYTES = "application/octet-stream"


def _format(accept: Annotated[str | None, Header()] = None) -> plot.Format:
    try:
        return plot.negotiate(accept)
    except plot.NotAcceptable:
        if accept and BYTES in accept.lower():
            return "svg"
        raise


@router.get(
    "/{job_id}/plot",
    response_class=Response,
    responses={
        200: {
            "description": "Bytes (log scale) against p50 latency: for a goal job every "
            "candidate coloured by the budget's figure, the Pareto front, the chosen candidate "
            "and the original; for a recipe job the original and the compressed model",
            **binary_content(plot.SVG, plot.PNG, BYTES),
        },
        **problem_responses(404, 406, 409),
    },
    summary="A picture of the job's result",
)
def get_job_plot(
    job_id: str, session: SessionDep, fmt: Annotated[plot.Format, Depends(_format)]
) -> Response:
    """SVG unless `Accept` prefers `image/png`; 409 until the job has succeeded."""
    report = CompressionReport.model_validate(service.get_report(session, job_id=job_id))
    return Response(
        plot.render(report, job_id=job_id, fmt=fmt),
        media_type=plot.MEDIA_TYPES[fmt],
        # A succeeded job's report does not change; the picture depends on Accept.
        headers={"Cache-Control": "private, max-age=3600", "Vary": "Accept"},
    )
