"""An upload's life after the bytes arrive, shared by models and datasets: idempotent replay,
store and record (app/uploads.py), queue the inspection after the commit, and delete.

The two differ only in how the door screens the file, their row's class and their inspection
queue; each feature's service says so in one ``UploadKind`` and keeps its own rules (what
"in use" means, what ready means) itself.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Generic

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from app import errors, idempotency
from app.db.models import ModelStatus, new_id
from app.db.session import on_commit
from app.storage import transaction
from app.uploads import Received, Row, store_upload


@dataclass(frozen=True)
class UploadKind(Generic[Row]):
    """What sets models and datasets apart at upload: ``folder`` names both the storage folder
    and the Idempotency-Key route; ``screen`` returns the format the door sees (raising
    ``errors.InvalidUpload`` to refuse the file); ``enqueue`` sends the inspection by id."""

    folder: str
    row: type[Row]
    get: Callable[[Session, str], Row | None]
    add: Callable[[Session, Row], Row]
    screen: Callable[[Path], str]
    enqueue: Callable[[str], None]


def accept(
    session: Session,
    kind: UploadKind[Row],
    *,
    stream: BinaryIO,
    filename: str | None,
    labels: dict[str, str] | None,
    idempotency_key: str | None,
) -> Row:
    """Store the upload after the cheap checks, ``pending`` until a worker has inspected it; a
    repeat of an earlier request with the same Idempotency-Key returns that request's row."""
    row_id = new_id()
    labels = labels or {}
    original = idempotency.replay(
        session,
        route=kind.folder,
        key=idempotency_key,
        body=lambda: idempotency.upload_body(stream, filename, labels),
        resource_id=row_id,
        load=kind.get,
    )
    if original is not None:
        return original

    def screened(upload: Received) -> Row:
        return kind.row(
            id=row_id,
            labels=labels,
            filename=upload.filename,
            format=kind.screen(upload.path),
            status=ModelStatus.PENDING,
            size_bytes=upload.size,
            sha256=upload.sha256,
            inspection={},
        )

    row = store_upload(
        session, stream=stream, filename=filename, folder=kind.folder, to_row=screened, add=kind.add
    )
    # The inspection is sent only once the row is committed, so the worker finds it.
    on_commit(session, lambda: kind.enqueue(row_id))
    return row


def delete_stored(
    session: Session,
    row: Row,
    *,
    delete: Callable[[Session, Row], None],
    keys: list[str],
    in_use: errors.AppError,
) -> None:
    """Delete the row now and the stored ``keys`` once that has committed. A job submitted
    since the caller's in-use check holds a RESTRICT key on the row, so the delete fails in the
    database; it is answered ``in_use``, like the check."""
    try:
        delete(session, row)
    except IntegrityError as exc:
        raise in_use from exc
    transaction.delete_after_commit(session, keys=keys)
