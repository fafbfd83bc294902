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

    def iter_bytes(self, key: str, chunk_size: int = 1024 * 1024) -> Iterator[bytes]: ...

    def size(self, key: str) -> int: ...

    def exists(self, key: str) -> bool: ...

    def delete(self, key: str) -> None: ...

    def ping(self) -> None: ...
