"""Receiving an uploaded file: streamed to disk in chunks with its hash, within the size limit."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import BinaryIO

from app import errors
from app.settings import get_settings

_CHUNK = 1024 * 1024


def safe_filename(name: str | None) -> str:
    """Client filenames are labels only; they never become paths."""
    base = (name or "upload").replace("\\", "/").rsplit("/", 1)[-1]
    cleaned = "".join(ch for ch in base if ch.isprintable() and ch not in '<>:"|?*')
    return (cleaned.strip(". ") or "upload")[:255]


def receive(stream: BinaryIO, dest: Path) -> tuple[int, str]:
    """Copy ``stream`` to ``dest``; return (size, sha256). Empty or oversized files are refused."""
    limit = get_settings().storage.max_upload_bytes
    digest = hashlib.sha256()
    size = 0
    with dest.open("wb") as out:
        while chunk := stream.read(_CHUNK):
            size += len(chunk)
            if size > limit:
                raise errors.PayloadTooLarge(f"the upload exceeds the limit of {limit} bytes")
            digest.update(chunk)
            out.write(chunk)
    if size == 0:
        raise errors.InvalidUpload("the uploaded file is empty")
    return size, digest.hexdigest()
