"""Artifact and upload storage: local disk by default, S3 for scale-out (same interface)."""

from functools import lru_cache

from app.settings import get_settings
from app.storage.base import Storage
from app.storage.local import LocalStorage


@lru_cache
def get_storage() -> Storage:
    settings = get_settings()
    if settings.storage.storage_backend == "s3":
        from app.storage.s3 import S3Storage

        return S3Storage(settings.storage)
    return LocalStorage(settings.data_dir / "storage")


__all__ = ["Storage", "get_storage"]
