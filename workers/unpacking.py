"""Fetching a stored model upload and unpacking it: the one place workers do it."""

from __future__ import annotations

from pathlib import Path

from app.storage import get_storage
from compressor.formats.archive import unpack_model_upload


def fetch_model(storage_key: str, dest: Path) -> Path:
    """Fetch the stored upload into ``dest`` and unpack it; return the model's root folder."""
    dest.mkdir(parents=True, exist_ok=True)
    upload = dest / "upload.bin"
    get_storage().fetch_to(storage_key, upload)
    root = unpack_model_upload(upload, dest / "model")
    upload.unlink()
    return root
