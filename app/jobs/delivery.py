"""Serving an artifact over HTTP: its validator (the ETag), conditional requests and one byte
range (RFC 9110 sections 13 and 14), or a redirect to the object store.

An artifact never changes once its job succeeded, so its sha256 is a strong validator.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from fastapi import Response
from fastapi.responses import RedirectResponse, StreamingResponse

from app.errors import AppError
from app.storage import Storage

# The headers a download answers with (declared in the OpenAPI beside the route).
ARTIFACT_HEADERS = {
    "X-Checksum-Sha256": {
        "description": "hex SHA-256 of the artifact",
        "schema": {"type": "string"},
    },
    "Content-Disposition": {"description": "a file name for it", "schema": {"type": "string"}},
    "ETag": {"description": "the artifact's SHA-256, quoted", "schema": {"type": "string"}},
    "Accept-Ranges": {"description": "always `bytes`", "schema": {"type": "string"}},
}
CONTENT_RANGE = {
    "Content-Range": {
        "description": "the bytes served, of the whole (`bytes */size` on a 416)",
        "schema": {"type": "string"},
    }
}


class RangeNotSatisfiable(AppError):
    status, slug, title = 416, "range-not-satisfiable", "Range not satisfiable"

    def __init__(self, spec: str, *, size: int) -> None:
        super().__init__(f"the range {spec!r} lies outside the artifact's {size} bytes", size=size)
        self.headers = {"Content-Range": f"bytes */{size}"}


@dataclass(frozen=True)
class ByteRange:
    start: int
    stop: int  # exclusive

    def content_range(self, size: int) -> str:
        return f"bytes {self.start}-{self.stop - 1}/{size}"


@dataclass(frozen=True)
class Artifact:
    key: str
    size: int
    sha256: str
    filename: str
    media_type: str

    @property
    def etag(self) -> str:
        return f'"{self.sha256}"'


@dataclass(frozen=True)
class Conditions:
    """The request headers a download honours."""

    range: str | None = None
    if_range: str | None = None
    if_none_match: str | None = None


def not_modified(if_none_match: str | None, etag: str) -> bool:
    """If-None-Match compares weakly: ``W/"x"`` matches ``"x"``, and ``*`` matches any."""
    if if_none_match is None:
        return False
    tags = {tag.strip().removeprefix("W/") for tag in if_none_match.split(",")}
    return "*" in tags or etag in tags


def requested_range(conditions: Conditions, *, etag: str, size: int) -> ByteRange | None:
    """The one range to serve, or None for the whole artifact.

    What this server does not serve (other units, several ranges, bad syntax) is ignored, as
    RFC 9110 allows, and the client gets the whole artifact. So is a Range whose If-Range is not
    the current ETag (a strong comparison, so a date never matches).
    """
    spec = conditions.range
    if not spec or (conditions.if_range is not None and conditions.if_range.strip() != etag):
        return None
    unit, _, span = spec.partition("=")
    first, dash, last = span.strip().partition("-")
    numbers = [n for n in (first, last) if n]
    if unit.strip().lower() != "bytes" or not dash or not numbers:
        return None
    if not all(n.isascii() and n.isdigit() for n in numbers):
        return None
    if not first:  # a suffix: the last N bytes
        if int(last) == 0 or size == 0:
            raise RangeNotSatisfiable(spec, size=size)
        return ByteRange(max(size - int(last), 0), size)
    start = int(first)
    if last and int(last) < start:
        return None
    if start >= size:
        raise RangeNotSatisfiable(spec, size=size)
    return ByteRange(start, size if not last else min(int(last) + 1, size))


def artifact_response(
    artifact: Artifact,
    storage: Storage,
    conditions: Conditions,
    *,
    with_body: bool,
    redirect_expiry_s: int | None = None,
) -> Response:
    """304, 206, 200 or (``redirect_expiry_s`` set and the store can) a 307 to the store."""
    headers = {
        "ETag": artifact.etag,
        "Accept-Ranges": "bytes",
        "X-Checksum-Sha256": artifact.sha256,
        "Content-Disposition": f'attachment; filename="{artifact.filename}"',
    }
    if not_modified(conditions.if_none_match, artifact.etag):
        return Response(status_code=304, headers=headers)
    if with_body and redirect_expiry_s is not None:
        url = storage.download_url(
            artifact.key,
            filename=artifact.filename,
            media_type=artifact.media_type,
            expires_s=redirect_expiry_s,
        )
        if url is not None:
            return RedirectResponse(url, status_code=307, headers=headers)
    span = requested_range(conditions, etag=artifact.etag, size=artifact.size)
    status, start, stop = 200, 0, artifact.size
    if span is not None:
        status, start, stop = 206, span.start, span.stop
        headers["Content-Range"] = span.content_range(artifact.size)
    headers["Content-Length"] = str(stop - start)
    if not with_body:
        return Response(status_code=status, headers=headers, media_type=artifact.media_type)
    chunks: Iterator[bytes] = storage.iter_bytes(artifact.key, start=start, stop=stop)
    return StreamingResponse(
        chunks, status_code=status, headers=headers, media_type=artifact.media_type
    )
