"""Dataset uploads and the check that a dataset can feed a model, done at job submission.

Stored files follow the transaction, as for models (see app/storage/transaction.py).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import BinaryIO

from sqlalchemy.orm import Session

from app import errors, uploads
from app.datasets import repository
from app.db.models import Dataset, ModelFile, new_id
from app.storage import transaction
from compressor.datasets import check_dataset_fits, inspect_dataset
from compressor.errors import CompressionError


def upload_dataset(session: Session, *, stream: BinaryIO, filename: str | None) -> Dataset:
    return uploads.store_upload(
        session,
        stream=stream,
        filename=filename,
        folder="datasets",
        to_row=_inspected,
        add=repository.add,
    )


def _inspected(upload: uploads.Received) -> Dataset:
    try:
        inspection = inspect_dataset(upload.path)
    except CompressionError as exc:
        raise errors.InvalidUpload(str(exc)) from exc
    return Dataset(
        id=new_id(),
        filename=upload.filename,
        format=str(inspection["format"]),
        size_bytes=upload.size,
        sha256=upload.sha256,
        inspection=inspection,
    )


def get_dataset(session: Session, *, dataset_id: str) -> Dataset:
    dataset = repository.get(session, dataset_id)
    if dataset is None:
        raise errors.DatasetNotFound(f"no dataset with id {dataset_id!r}")
    return dataset


def list_datasets(session: Session, *, limit: int, offset: int) -> tuple[Sequence[Dataset], int]:
    return repository.list_page(session, limit=limit, offset=offset)


def delete_dataset(session: Session, *, dataset_id: str) -> None:
    dataset = get_dataset(session, dataset_id=dataset_id)
    if repository.used_by_active_job(session, dataset_id):
        raise errors.Conflict("the dataset is used by a queued or running job; cancel it first")
    key = dataset.storage_key
    repository.delete(session, dataset)
    transaction.delete_after_commit(session, keys=[key])


def check_job_data(session: Session, *, model: ModelFile, data: dict[str, str]) -> None:
    """Every named dataset exists and matches the model's inputs (names, shapes, dtypes)."""
    for role, dataset_id in data.items():
        dataset = get_dataset(session, dataset_id=dataset_id)
        try:
            check_dataset_fits(
                dataset.inspection,
                list(model.inspection.get("inputs") or []),
                has_tokenizer=bool(model.inspection.get("has_tokenizer")),
                role=role,
            )
        except CompressionError as exc:
            raise errors.InvalidDataset(str(exc)) from exc
