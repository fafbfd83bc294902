from __future__ import annotations

from fastapi import APIRouter, Response, UploadFile

from app.deps import Limit, Offset, SessionDep
from app.errors import problem_responses
from app.idempotency import IdempotencyKeyHeader
from app.labels import LabelFiltersDep, LabelsForm, parse_form_labels
from app.models_upload import service
from app.models_upload.schemas import ModelRead
from app.openapi import LOCATION
from app.pagination import Page

router = APIRouter(prefix="/v1/models", tags=["models"])


@router.post(
    "",
    status_code=201,
    response_model=ModelRead,
    responses={201: {"headers": LOCATION}, **problem_responses(409, 413, 422, 429)},
    summary="Upload a model (multipart field 'file')",
    description=(
        "Cheap checks run here (pickles, executable formats, archive escapes and bombs, "
        "unknown formats: 422, nothing kept). The stored upload is then `pending` until a "
        "worker has unpacked and inspected it: `ready` with the inspection, or `rejected` "
        "with `rejection_reason`. Jobs need a ready model (409 with Retry-After while pending)."
    ),
)
def upload_model(
    session: SessionDep,
    file: UploadFile,
    response: Response,
    labels: LabelsForm = None,
    idempotency_key: IdempotencyKeyHeader = None,
) -> ModelRead:
    model = service.upload_model(
        session,
        stream=file.file,
        filename=file.filename,
        labels=parse_form_labels(labels),
        idempotency_key=idempotency_key,
    )
    response.headers["Location"] = f"/v1/models/{model.id}"
    return ModelRead.model_validate(model)


@router.get("", response_model=Page[ModelRead], responses=problem_responses(422))
def list_models(
    session: SessionDep, labels: LabelFiltersDep, limit: Limit = 50, offset: Offset = 0
) -> Page[ModelRead]:
    rows, total = service.list_models(session, labels=labels, limit=limit, offset=offset)
    items = [ModelRead.model_validate(r) for r in rows]
    return Page[ModelRead](items=items, total=total, limit=limit, offset=offset)


@router.get("/{model_id}", response_model=ModelRead, responses=problem_responses(404))
def get_model(model_id: str, session: SessionDep) -> ModelRead:
    return ModelRead.model_validate(service.get_model(session, model_id=model_id))


@router.delete("/{model_id}", status_code=204, responses=problem_responses(404, 409))
def delete_model(model_id: str, session: SessionDep) -> Response:
    service.delete_model(session, model_id=model_id)
    return Response(status_code=204)
