"""Model uploads: stream to disk with a hash, screen, store, record, queue the inspection.

Nothing half-written remains: a refused upload, or one whose transaction does not commit,
leaves no row and no file; a deleted model's files go only once the delete has committed.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import BinaryIO

from sqlalchemy.orm import Session

from app import errors, upload_common
from app.baselines import repository as baselines
from app.db.models import ModelFile, ModelStatus
from app.labels import LabelFilters
from app.models_upload import repository
from app.queue import enqueue_inspection
from app.settings import get_settings
from compressor.errors import InvalidModelError
from compressor.formats.archive import screen_upload


def upload_model(
    session: Session,
    *,
    stream: BinaryIO,
    filename: str | None,
    labels: dict[str, str] | None = None,
    idempotency_key: str | None = None,
) -> ModelFile:
    """Store the upload after the cheap checks; a worker inspects it (``pending`` until then)."""
    return upload_common.accept(
        session,
        MODELS,
        stream=stream,
        filename=filename,
        labels=labels,
        idempotency_key=idempotency_key,
    )


def _screen(path: Path) -> str:
    allow_executable = get_settings().uploads.allow_executable_formats
    try:
        return screen_upload(path, allow_executable=allow_executable)
    except InvalidModelError as exc:
        raise errors.InvalidUpload(str(exc)) from exc


MODELS = upload_common.UploadKind(
    folder="models",
    row=ModelFile,
    get=repository.get,
    add=repository.add,
    screen=_screen,
    enqueue=enqueue_inspection,
)


def require_ready(model: ModelFile, *, role: str = "model") -> None:
    """A job may only use a model a worker has inspected and accepted."""
    if model.status in (ModelStatus.PENDING, ModelStatus.INSPECTING):
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


def list_models(
    session: Session, *, labels: LabelFilters, limit: int, offset: int
) -> tuple[Sequence[ModelFile], int]:
    return repository.list_page(session, labels=labels, limit=limit, offset=offset)


def delete_model(session: Session, *, model_id: str) -> None:
    """Refused while a queued or running job compresses the model or trains it as a student.
    A job submitted while this runs holds a RESTRICT key on the model, so the delete then
    fails in the database and is answered 409 like the check (see repository.delete)."""
    model = get_model(session, model_id=model_id)
    in_use = errors.ModelInUse("the model is used by a queued or running job; cancel it first")
    if repository.has_active_jobs(session, model_id):
        raise in_use
    keys = [model.storage_key, *repository.job_artifact_keys(session, model_id)]
    if not repository.same_bytes_elsewhere(session, model):
        # The figures measured from these bytes go with the tenant's last copy of them.
        keys += baselines.delete_measured_from(
            session, tenant=model.tenant, model_sha256=model.sha256
        )
    upload_common.delete_stored(session, model, delete=repository.delete, keys=keys, in_use=in_use)
