"""Idempotency-Key on the create requests (POST /v1/models, /v1/datasets, /v1/jobs).

A request with a key first claims (tenant, route, key) for the id its resource will get, in the
request's own transaction, before it creates anything: the claim and the resource commit or
vanish together. A repeat within a day finds the claim: the same body gets the original
resource back, a different body 422.

Two concurrent requests with one key: the claim is ``INSERT ... ON CONFLICT DO NOTHING``, so
the database makes the second wait for the first (PostgreSQL on the key's unique index,
SQLite's single writer). Once the first commits, the second finds its claim and answers with
the first's resource, exactly as a retry a moment later would; a client cannot tell a race from
a retry, so it needs no special case (a 409 would make it retry into the same answer). Should
the first fail, its claim rolls back with it and the second creates the resource.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from datetime import timedelta
from typing import Annotated, Any, BinaryIO, TypeVar

from fastapi import Header
from sqlalchemy.orm import Session

from app import idempotency_repository as repository
from app.auth.tenancy import session_tenant
from app.db.models import utcnow
from app.errors import AppError, Conflict
from app.uploads import safe_filename
from compressor.digest import sha256_stream

TTL = timedelta(days=1)
T = TypeVar("T")

IdempotencyKeyHeader = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        min_length=1,
        max_length=255,
        description="a client-chosen key, kept a day: a repeat with the same body returns the "
        "original resource (same status and Location), one with a different body gets 422",
    ),
]


class IdempotencyKeyReused(AppError):
    status, slug, title = 422, "idempotency-key-reused", "Idempotency-Key reused"


class IdempotentResourceGone(Conflict):
    pass


def fingerprint(body: Any) -> str:
    """sha256 of the canonical JSON of ``body``: key order and spacing do not matter."""
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()


def upload_body(stream: BinaryIO, filename: str | None, labels: dict[str, str]) -> Any:
    """What identifies an upload: the file's sha256, its name and its labels. The stream is
    read once here and rewound for the upload itself."""
    _, file_sha256 = sha256_stream(stream)
    stream.seek(0)
    return {"file_sha256": file_sha256, "filename": safe_filename(filename), "labels": labels}


def replay(
    session: Session,
    *,
    route: str,
    key: str | None,
    body: Callable[[], Any],
    resource_id: str,
    load: Callable[[Session, str], T | None],
) -> T | None:
    """The original resource when this request repeats an earlier one with ``key``; None when
    the caller should create its resource under ``resource_id`` (the key now claims it)."""
    if key is None:
        return None
    digest = fingerprint(body())
    original = _claim(session, route=route, key=key, digest=digest, resource_id=resource_id)
    if original is None:
        return None
    row = load(session, original)
    if row is None:
        raise IdempotentResourceGone(
            f"the resource created with this Idempotency-Key ({original}) was deleted; "
            "send a new key to create another"
        )
    return row


def _claim(session: Session, *, route: str, key: str, digest: str, resource_id: str) -> str | None:
    """Claim the key, or return the resource id of the live claim already holding it."""
    tenant = session_tenant(session) or ""
    repository.drop_expired(session, tenant=tenant, route=route, key=key, before=utcnow() - TTL)
    claimed = repository.insert_if_absent(
        session,
        tenant=tenant,
        route=route,
        key=key,
        body_sha256=digest,
        resource_id=resource_id,
        created_at=utcnow(),
    )
    if claimed:
        return None
    held = repository.held(session, tenant=tenant, route=route, key=key)
    if held.body_sha256 != digest:
        raise IdempotencyKeyReused(
            "this Idempotency-Key was used with a different request body; send a new key for "
            "a different request"
        )
    return held.resource_id
