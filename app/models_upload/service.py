"""Model uploads: stream to disk with a hash, screen, store, record, queue the inspection.

Nothing half-written remains: a refused upload leaves no row and no file.
"""

from __future__ import annotations

import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import BinaryIO

from sqlalchemy.orm import Session

from app import errors, uploads
from app.db.models import ModelFile, ModelStatus, new_id
from app.db.session import on_commit
from app.models_upload import repository
from app.queue import enqueue_inspection
from app.settings import get_settings
from app.storage import get_storage
from compressor.errors import InvalidModelError
from compressor.formats.archive import screen_upload, unpack_model_upload


def upload_model(session: Session, *, stream: BinaryIO, filename: str | None) -> ModelFile:
    """Store the upload after the cheap checks; a worker inspects it (``pending`` until then)."""
    settings = get_settings()
    settings.tmp_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=settings.tmp_dir, prefix="upload-") as tmp:
        upload_path = Path(tmp) / "upload.bin"
        size, sha256 = uploads.receive(stream, upload_path)
        try:
            kind = screen_upload(
                upload_path, allow_executable=settings.uploads.allow_executable_formats
            )
        except InvalidModelError as exc:
            raise errors.InvalidUpload(str(exc)) from exc
        model = ModelFile(
            id=new_id(),
            filename=uploads.safe_filename(filename),
            format=kind,
            status=ModelStatus.PENDING,
            size_bytes=size,
            sha256=sha256,
            inspection={},
        )
        model.storage_key = f"models/{model.id}/upload"
        repository.add(session, model)
        get_storage().put_file(model.storage_key, upload_path)
    model_id = model.id
    on_commit(session, lambda: enqueue_inspection(model_id))
    return model


def require_ready(model: ModelFile, *, role: str = "model") -> None:
    """A job may only use a model a worker has inspected and accepted."""
    if model.status == ModelStatus.PENDING:
        raise errors.ModelNotReady(
            f"{role} {model.id} is still being inspected; retry when its status is 'ready'"
        )
    if model.status == ModelStatus.REJECTED:
        raise errors.UnsupportedModel(
            f"{role} {model.id} was rejected at inspection: {model.rejection_reason}"
        )


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
