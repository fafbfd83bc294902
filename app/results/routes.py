from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query

from app.deps import Limit, Offset, SessionDep
from app.errors import problem_responses
from app.pagination import Page
from app.results import service
from app.results.schemas import FigureFilters, ModelJobResult, ResultQuery, SortKey

router = APIRouter(prefix="/v1/models", tags=["results"])

_SORT_HELP = (
    f"one of {', '.join(k.value for k in SortKey)}; prefix '-' for descending. "
    "Jobs without figures come last."
)
# Finite and bounded, so a filter value is never something the database cannot compare.
Bound = Annotated[float | None, Query(ge=-1e12, le=1e12, allow_inf_nan=False)]


def result_query(
    sort: Annotated[str, Query(max_length=64, description=_SORT_HELP)] = "-created_at",
    min_speedup: Bound = None,
    min_compression_ratio: Bound = None,
    min_fidelity_min: Bound = None,
    max_accuracy_drop: Bound = None,
    max_latency_p50_ms: Bound = None,
    max_compressed_bytes: Annotated[int | None, Query(ge=0, le=2**63 - 1)] = None,
) -> ResultQuery:
    return ResultQuery(
        sort=service.parse_sort(sort),
        filters=FigureFilters(
            min_speedup=min_speedup,
            min_compression_ratio=min_compression_ratio,
            min_fidelity_min=min_fidelity_min,
            max_accuracy_drop=max_accuracy_drop,
            max_latency_p50_ms=max_latency_p50_ms,
            max_compressed_bytes=max_compressed_bytes,
        ),
    )


ResultQueryDep = Annotated[ResultQuery, Depends(result_query)]


@router.get(
    "/{model_id}/results",
    response_model=Page[ModelJobResult],
    responses=problem_responses(404, 422),
    summary="Every finished job on a model side by side, with its headline figures",
)
def list_model_results(
    model_id: str, session: SessionDep, query: ResultQueryDep, limit: Limit = 50, offset: Offset = 0
) -> Page[ModelJobResult]:
    items, total = service.model_results(
        session, model_id=model_id, query=query, limit=limit, offset=offset
    )
    return Page[ModelJobResult](items=items, total=total, limit=limit, offset=offset)
