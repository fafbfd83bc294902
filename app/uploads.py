"""Receiving an uploaded file: streamed to disk in chunks with its hash, within the size limit,
then recorded and stored in the request's transaction."""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, TypeVar

from sqlalchemy.orm import Session

from app import errors
from app.auth import quotas
from app.db.models import Dataset, ModelFile
from app.settings import get_settings
from app.storage import transaction
from compressor.digest import sha256_stream

Row = TypeVar("Row", ModelFile, Dataset)


@dataclass(frozen=True)
class Received:
    path: Path
    size: int
    sha256: str
    filename: str


def safe_filename(name: str | None) -> str:
    """Client filenames are labels only; they never become paths."""
    base = (name or "upload").replace("\\", "/").rsplit("/", 1)[-1]
    cleaned = "".join(ch for ch in base if ch.isprintable() and ch not in '<>:"|?*')
    return (cleaned.strip(". ") or "upload")[:255]


def receive(stream: BinaryIO, dest: Path) -> tuple[int, str]:
    """Copy ``stream`` to ``dest``; return (size, sha256). Empty or oversized files are refused."""
    limit = get_settings().storage.max_upload_bytes
    with dest.open("wb") as out:
        written = 0

        def write(chunk: bytes) -> None:
            nonlocal written
            written += len(chunk)
            if written > limit:
                raise errors.PayloadTooLarge(f"the upload exceeds the limit of {limit} bytes")
            out.write(chunk)

        size, sha256 = sha256_stream(stream, sink=write)
    if size == 0:
        raise errors.InvalidUpload("the uploaded file is empty")
    return size, sha256


def store_upload(
    session: Session,
    *,
    stream: BinaryIO,
    filename: str | None,
    folder: str,
    to_row: Callable[[Received], Row],
    add: Callable[[Session, Row], Row],
) -> Row:
    """Receive, check and record an upload, then store it under ``{folder}/{id}/upload``.

    ``to_row`` checks the received file (raising a 4xx to refuse it) and builds its row; ``add``
    flushes the row first, so a refused upload or a database error stores nothing. The stored
    file is removed again if the request's transaction does not commit.
    """
    settings = get_settings()
    settings.tmp_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=settings.tmp_dir, prefix=f"{folder}-") as tmp:
        path = Path(tmp) / "upload.bin"
        size, sha256 = receive(stream, path)
        quotas.check_storage(session, size)
        row = to_row(Received(path, size, sha256, safe_filename(filename)))
        row.storage_key = f"{folder}/{row.id}/upload"
        add(session, row)
        transaction.put_file(session, key=row.storage_key, src=path)
    return row
