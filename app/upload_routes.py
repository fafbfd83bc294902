"""The four routes of an upload resource (upload, list, get, delete), written once for models
(/v1/models) and datasets (/v1/datasets); each feature's routes.py says only what differs.

Operation names (``upload_model``, ``list_datasets``, ...) and the path parameter
(``model_id``, ``dataset_id``) are built from the resource's noun, so the OpenAPI document and
the clients generated from it are the same as with one hand-written router per feature.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from fastapi import APIRouter, Path, Response, UploadFile

from app.deps import Limit, Offset, SessionDep
from app.errors import problem_responses
from app.idempotency import IdempotencyKeyHeader
from app.labels import LabelFiltersDep, LabelsForm, parse_form_labels
from app.openapi import LOCATION
from app.pagination import Page
from app.upload_schemas import UploadRead


@dataclass(frozen=True)
class UploadResource:
    """``noun`` ("model") names the prefix (/v1/models), the tag, the operations and the id
    parameter; the callables are the feature's service functions, called with keywords as
    they declare them (``get(session, model_id=...)``)."""

    noun: str
    read: type[UploadRead]
    summary: str
    description: str
    upload: Callable[..., Any]
    list_page: Callable[..., tuple[Sequence[Any], int]]
    get: Callable[..., Any]
    delete: Callable[..., None]


def upload_router(res: UploadResource) -> APIRouter:
    prefix, plural = f"/v1/{res.noun}s", f"{res.noun}s"
    router = APIRouter(prefix=prefix, tags=[plural])
    # The page's item class is the feature's schema, known only at run time (Page_ModelRead_).
    read, page = res.read, Page[res.read]  # type: ignore[name-defined]
    # Each id route reads the id under the feature's own name ({model_id}, {dataset_id}).
    id_param = f"{res.noun}_id"
    item_path = "/{" + id_param + "}"

    @router.post(
        "",
        name=f"upload_{res.noun}",
        status_code=201,
        response_model=read,
        responses={201: {"headers": LOCATION}, **problem_responses(409, 413, 422, 429)},
        summary=res.summary,
        description=res.description,
    )
    def upload(
        session: SessionDep,
        file: UploadFile,
        response: Response,
        labels: LabelsForm = None,
        idempotency_key: IdempotencyKeyHeader = None,
    ) -> Any:
        row = res.upload(
            session,
            stream=file.file,
            filename=file.filename,
            labels=parse_form_labels(labels),
            idempotency_key=idempotency_key,
        )
        response.headers["Location"] = f"{prefix}/{row.id}"
        return read.model_validate(row)

    @router.get("", name=f"list_{plural}", response_model=page, responses=problem_responses(422))
    def list_rows(
        session: SessionDep, labels: LabelFiltersDep, limit: Limit = 50, offset: Offset = 0
    ) -> Any:
        rows, total = res.list_page(session, labels=labels, limit=limit, offset=offset)
        items = [read.model_validate(r) for r in rows]
        return page(items=items, total=total, limit=limit, offset=offset)

    @router.get(
        item_path, name=f"get_{res.noun}", response_model=read, responses=problem_responses(404)
    )
    def get_one(session: SessionDep, row_id: str = Path(alias=id_param)) -> Any:
        return read.model_validate(res.get(session, **{id_param: row_id}))

    @router.delete(
        item_path,
        name=f"delete_{res.noun}",
        status_code=204,
        responses=problem_responses(404, 409),
    )
    def delete_one(session: SessionDep, row_id: str = Path(alias=id_param)) -> Response:
        res.delete(session, **{id_param: row_id})
        return Response(status_code=204)

    return router
