from __future__ import annotations

from fastapi import APIRouter, Response, UploadFile

from app.datasets import service
from app.datasets.schemas import DatasetRead
from app.deps import Limit, Offset, SessionDep
from app.errors import problem_responses
from app.idempotency import IdempotencyKeyHeader
from app.labels import LabelFiltersDep, LabelsForm, parse_form_labels
from app.openapi import LOCATION
from app.pagination import Page

router = APIRouter(prefix="/v1/datasets", tags=["datasets"])


@router.post(
    "",
    status_code=201,
    response_model=DatasetRead,
    responses={201: {"headers": LOCATION}, **problem_responses(409, 413, 422, 429)},
    summary="Upload a dataset: .npz/.safetensors tensors or JSONL text (multipart field 'file')",
    description=(
        "Cheap checks run here (tensor headers: numeric dtypes only, each declared shape must "
        "match the bytes it holds, row and array caps; JSONL: the first row): 422, nothing kept. "
        "The stored upload is then `pending` until a worker has inspected it: `ready` with the "
        "inspection, or `rejected` with `rejection_reason`. Jobs need a ready dataset (409 with "
        "Retry-After while it is inspected, 422 once rejected)."
    ),
)
def upload_dataset(
    session: SessionDep,
    file: UploadFile,
    response: Response,
    labels: LabelsForm = None,
    idempotency_key: IdempotencyKeyHeader = None,
) -> DatasetRead:
    dataset = service.upload_dataset(
        session,
        stream=file.file,
        filename=file.filename,
        labels=parse_form_labels(labels),
        idempotency_key=idempotency_key,
    )
    response.headers["Location"] = f"/v1/datasets/{dataset.id}"
    return DatasetRead.model_validate(dataset)


@router.get("", response_model=Page[DatasetRead], responses=problem_responses(422))
def list_datasets(
    session: SessionDep, labels: LabelFiltersDep, limit: Limit = 50, offset: Offset = 0
) -> Page[DatasetRead]:
    rows, total = service.list_datasets(session, labels=labels, limit=limit, offset=offset)
    items = [DatasetRead.model_validate(r) for r in rows]
    return Page[DatasetRead](items=items, total=total, limit=limit, offset=offset)


@router.get("/{dataset_id}", response_model=DatasetRead, responses=problem_responses(404))
def get_dataset(dataset_id: str, session: SessionDep) -> DatasetRead:
    return DatasetRead.model_validate(service.get_dataset(session, dataset_id=dataset_id))


@router.delete("/{dataset_id}", status_code=204, responses=problem_responses(404, 409))
def delete_dataset(dataset_id: str, session: SessionDep) -> Response:
    service.delete_dataset(session, dataset_id=dataset_id)
    return Response(status_code=204)
