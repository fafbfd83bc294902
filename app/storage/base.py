from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Protocol


class StorageFull(OSError):
    """The backend has no room left; the caller fails the job with a clear message."""


class Storage(Protocol):
    def put_file(self, key: str, src: Path) -> None:
        """Store ``src`` under ``key`` atomically: readers see the old object or the whole new one."""

    def fetch_to(self, key: str, dest: Path) -> None: ...

    def copy(self, source: str, key: str) -> None:
        """Store the object at ``source`` under ``key`` too, inside the store (on S3, a copy the
        service makes itself): the bytes never pass through the caller."""

    def iter_bytes(
        self, key: str, chunk_size: int = 1024 * 1024, *, start: int = 0, stop: int | None = None
    ) -> Iterator[bytes]:
        """The object's bytes from ``start`` up to ``stop`` (exclusive; None: to the end)."""

    def download_url(
        self, key: str, *, filename: str, media_type: str, expires_s: int
    ) -> str | None:
        """A URL that serves the object itself for ``expires_s``, or None where there is none."""

    def size(self, key: str) -> int: ...

    def exists(self, key: str) -> bool: ...

    def delete(self, key: str) -> None: ...

    def ping(self) -> None: ...
