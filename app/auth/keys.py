"""Creating, finding and revoking API keys. Only a key's SHA-256 is stored."""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Sequence

from sqlalchemy.orm import Session

from app.auth import repository
from app.db.models import ApiKey

KEY_PREFIX = "mp_"


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def create_key(session: Session, *, tenant: str, admin: bool) -> tuple[ApiKey, str]:
    """A new key for ``tenant``; the plain key is returned once and never stored."""
    key = KEY_PREFIX + secrets.token_urlsafe(32)
    row = ApiKey(tenant=tenant, prefix=key[:11], key_hash=hash_key(key), admin=admin)
    return repository.add_key(session, row), key


def find_active(session: Session, key: str) -> ApiKey | None:
    row = repository.key_by_hash(session, hash_key(key))
    return row if row is not None and row.revoked_at is None else None


def list_keys(session: Session) -> Sequence[ApiKey]:
    return repository.keys(session)


def revoke(session: Session, key_id: str) -> bool:
    return repository.revoke_key(session, key_id)
