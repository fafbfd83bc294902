"""SHA-256 of a stream or file, read in chunks; shared by uploads, artifacts and packing."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

CHUNK = 1024 * 1024


def sha256_stream(
    stream: BinaryIO, *, sink: Callable[[bytes], object] | None = None
) -> tuple[int, str]:
    """Read ``stream`` to its end; return (size, hex sha256). Each chunk is also handed to
    ``sink``, which may refuse the stream by raising (e.g. over a size limit)."""
    digest = hashlib.sha256()
    size = 0
    while chunk := stream.read(CHUNK):
        size += len(chunk)
        if sink is not None:
            sink(chunk)
        digest.update(chunk)
    return size, digest.hexdigest()


def sha256_file(path: Path) -> str:
    with path.open("rb") as fh:
        return sha256_stream(fh)[1]
