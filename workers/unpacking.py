"""Fetching a stored model upload and unpacking it: the one place workers do it."""

from __future__ import annotations

from pathlib import Path

from app.settings import get_settings
from app.storage import get_storage
from compressor.formats.archive import unpack_model_upload
from workers.model_cache import linked_model


def fetch_model(storage_key: str, dest: Path) -> Path:
    """Fetch the stored upload into ``dest`` and unpack it; return the model's root folder."""
    dest.mkdir(parents=True, exist_ok=True)
    upload = dest / "upload.bin"
    get_storage().fetch_to(storage_key, upload)
    root = unpack_model_upload(upload, dest / "model")
    upload.unlink()
    return root


def fetch_upload(storage_key: str, sha256: str, dest: Path) -> Path:
    """``fetch_model`` for a model upload (content ``sha256``), through this worker's cache of
    unpacked uploads: a later job on the same upload links the files already unpacked."""
    settings = get_settings()
    return linked_model(
        settings.model_cache_dir,
        sha256,
        dest,
        unpack=lambda folder: fetch_model(storage_key, folder),
        limit=settings.worker.model_cache_bytes,
    )
