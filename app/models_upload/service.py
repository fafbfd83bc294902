"""Model uploads: stream to disk with a hash, inspect, store, record. Nothing half-written remains."""

from __future__ import annotations

import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import BinaryIO

from sqlalchemy.orm import Session

from app import errors, uploads
from app.db.models import ModelFile, ModelStatus, new_id
from app.models_upload import repository
from app.settings import get_settings
from app.storage import get_storage
from compressor.errors import InvalidModelError, UnsupportedModelError
from compressor.formats.archive import unpack_model_upload
from compressor.formats.detect import inspect_model_dir


def upload_model(session: Session, *, stream: BinaryIO, filename: str | None) -> ModelFile:
    settings = get_settings()
    settings.tmp_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=settings.tmp_dir, prefix="upload-") as tmp:
        work = Path(tmp)
        upload_path = work / "upload.bin"
        size, sha256 = uploads.receive(stream, upload_path)
        try:
            root = unpack_model_upload(upload_path, work / "unpacked")
            inspection = inspect_model_dir(root)
        except UnsupportedModelError as exc:
            raise errors.UnsupportedModel(str(exc)) from exc
        except InvalidModelError as exc:
            raise errors.InvalidUpload(str(exc)) from exc
        model = ModelFile(
            id=new_id(),
            filename=uploads.safe_filename(filename),
            format=str(inspection["format"]),
            status=ModelStatus.READY,
            size_bytes=size,
            sha256=sha256,
            inspection=inspection,
        )
        model.storage_key = f"models/{model.id}/upload"
        repository.add(session, model)
        get_storage().put_file(model.storage_key, upload_path)
    return model


def get_model(session: Session, *, model_id: str) -> ModelFile:
    model = repository.get(session, model_id)
    if model is None:
        raise errors.ModelNotFound(f"no model with id {model_id!r}")
    return model


def list_models(session: Session, *, limit: int, offset: int) -> tuple[Sequence[ModelFile], int]:
    return repository.list_page(session, limit=limit, offset=offset)


def delete_model(session: Session, *, model_id: str) -> None:
    model = get_model(session, model_id=model_id)
    if repository.has_active_jobs(session, model_id):
        raise errors.ModelInUse("the model is used by a queued or running job; cancel it first")
    keys = [model.storage_key, *repository.job_artifact_keys(session, model_id)]
    repository.delete(session, model)
    storage = get_storage()
    for key in keys:
        storage.delete(key)


def unpack_for_job(model: ModelFile, dest: Path) -> Path:
    """Fetch a stored upload and unpack it; used by workers."""
    dest.mkdir(parents=True, exist_ok=True)
    upload = dest / "upload.bin"
    get_storage().fetch_to(model.storage_key, upload)
    root = unpack_model_upload(upload, dest / "model")
    upload.unlink()
    return root
