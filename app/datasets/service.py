"""Dataset uploads and the check that a dataset can feed a model, done at job submission.

The request only streams the upload to storage and judges its headers (tensor files in full,
JSONL by its first row); a worker inspects it (workers/inspect_dataset.py), and it is
``pending`` until then, like a model. Stored files follow the transaction, as for models (see
app/storage/transaction.py).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import BinaryIO

from sqlalchemy.orm import Session

from app import errors, upload_common
from app.datasets import repository
from app.db.models import Dataset, ModelFile, ModelStatus
from app.labels import LabelFilters
from app.queue import enqueue_dataset_inspection
from app.settings import get_settings
from compressor.dataset_headers import DatasetLimits, screen_dataset
from compressor.datasets import check_dataset_fits
from compressor.errors import CompressionError


def dataset_limits() -> DatasetLimits:
    uploads_settings = get_settings().uploads
    return DatasetLimits(
        max_rows=uploads_settings.dataset_max_rows,
        max_fields=uploads_settings.dataset_max_fields,
    )


def upload_dataset(
    session: Session,
    *,
    stream: BinaryIO,
    filename: str | None,
    labels: dict[str, str] | None = None,
    idempotency_key: str | None = None,
) -> Dataset:
    return upload_common.accept(
        session,
        DATASETS,
        stream=stream,
        filename=filename,
        labels=labels,
        idempotency_key=idempotency_key,
    )


def _screen(path: Path) -> str:
    try:
        return screen_dataset(path, dataset_limits())
    except CompressionError as exc:
        raise errors.InvalidUpload(str(exc)) from exc


DATASETS = upload_common.UploadKind(
    folder="datasets",
    row=Dataset,
    get=repository.get,
    add=repository.add,
    screen=_screen,
    enqueue=enqueue_dataset_inspection,
)


def get_dataset(session: Session, *, dataset_id: str) -> Dataset:
    dataset = repository.get(session, dataset_id)
    if dataset is None:
        raise errors.DatasetNotFound(f"no dataset with id {dataset_id!r}")
    return dataset


def list_datasets(
    session: Session, *, labels: LabelFilters, limit: int, offset: int
) -> tuple[Sequence[Dataset], int]:
    return repository.list_page(session, labels=labels, limit=limit, offset=offset)


def delete_dataset(session: Session, *, dataset_id: str) -> None:
    """Refused while a queued or running job reads the dataset. Finished jobs keep their
    job_inputs rows as history until the dataset goes: those rows are deleted with it. A job
    submitted while this runs holds a RESTRICT key on the dataset, so the delete then fails
    in the database, and is answered 409 like the check."""
    dataset = get_dataset(session, dataset_id=dataset_id)
    in_use = errors.Conflict("the dataset is used by a queued or running job; cancel it first")
    if repository.used_by_active_job(session, dataset_id):
        raise in_use
    upload_common.delete_stored(
        session, dataset, delete=repository.delete, keys=[dataset.storage_key], in_use=in_use
    )


def require_ready(dataset: Dataset, *, role: str) -> None:
    """409 while a worker has not yet decided (it clears by itself, so Retry-After); 422 once
    the dataset was rejected (it never will)."""
    if dataset.status in (ModelStatus.PENDING, ModelStatus.INSPECTING):
        raise errors.DatasetNotReady(
            f"the {role} dataset {dataset.id} is still being inspected; retry when its status "
            "is 'ready'"
        )
    if dataset.status == ModelStatus.REJECTED:
        raise errors.InvalidDataset(
            f"the {role} dataset {dataset.id} was rejected at inspection: "
            f"{dataset.rejection_reason}"
        )


def check_job_data(session: Session, *, model: ModelFile, data: dict[str, str]) -> None:
    """Every named dataset exists, is ready, and matches the model's inputs (names, shapes,
    dtypes)."""
    for role, dataset_id in data.items():
        dataset = get_dataset(session, dataset_id=dataset_id)
        require_ready(dataset, role=role)
        try:
            check_dataset_fits(
                dataset.inspection,
                list(model.inspection.get("inputs") or []),
                has_tokenizer=bool(model.inspection.get("has_tokenizer")),
                role=role,
            )
        except CompressionError as exc:
            raise errors.InvalidDataset(str(exc)) from exc
