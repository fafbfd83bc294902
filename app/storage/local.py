from __future__ import annotations

import errno
import os
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path

from app.storage.base import StorageFull


class LocalStorage:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.root.mkdir(parents=True, exist_ok=True)

    def _path(self, key: str) -> Path:
        path = (self.root / key).resolve()
        if not path.is_relative_to(self.root.resolve()):
            raise ValueError(f"storage key escapes the root: {key!r}")
        return path

    def put_file(self, key: str, src: Path) -> None:
        dest = self._path(key)
        dest.parent.mkdir(parents=True, exist_ok=True)
        partial = dest.with_name(f".{dest.name}.{uuid.uuid4().hex}.partial")
        try:
            shutil.copyfile(src, partial)
            os.replace(partial, dest)
        except OSError as exc:
            partial.unlink(missing_ok=True)
            if exc.errno == errno.ENOSPC:
                raise StorageFull("no space left on the artifact store") from exc
            raise

    def fetch_to(self, key: str, dest: Path) -> None:
        shutil.copyfile(self._path(key), dest)

    def copy(self, source: str, key: str) -> None:
        self.put_file(key, self._path(source))

    def iter_bytes(
        self, key: str, chunk_size: int = 1024 * 1024, *, start: int = 0, stop: int | None = None
    ) -> Iterator[bytes]:
        with self._path(key).open("rb") as fh:
            fh.seek(start)
            left = None if stop is None else stop - start
            while left is None or left > 0:
                chunk = fh.read(chunk_size if left is None else min(chunk_size, left))
                if not chunk:
                    return
                if left is not None:
                    left -= len(chunk)
                yield chunk

    def download_url(self, key: str, *, filename: str, media_type: str, expires_s: int) -> None:
        return None  # the API streams local files itself

    def size(self, key: str) -> int:
        return self._path(key).stat().st_size

    def exists(self, key: str) -> bool:
        return self._path(key).is_file()

    def delete(self, key: str) -> None:
        path = self._path(key)
        path.unlink(missing_ok=True)
        parent = path.parent
        while parent != self.root.resolve() and parent.is_dir() and not any(parent.iterdir()):
            parent.rmdir()
            parent = parent.parent

    def ping(self) -> None:
        if not os.access(self.root, os.W_OK):
            raise OSError(f"storage root {self.root} is not writable")
