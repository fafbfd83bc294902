"""Every query of app/idempotency.py: claims of Idempotency-Keys, per tenant, route and key."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from app.db.models import IdempotencyKey


def _same_key(tenant: str, route: str, key: str) -> tuple[Any, ...]:
    return (
        IdempotencyKey.tenant == tenant,
        IdempotencyKey.route == route,
        IdempotencyKey.key == key,
    )


def drop_expired(session: Session, *, tenant: str, route: str, key: str, before: datetime) -> None:
    session.execute(
        delete(IdempotencyKey).where(
            *_same_key(tenant, route, key), IdempotencyKey.created_at < before
        )
    )


def insert_if_absent(session: Session, **values: Any) -> bool:
    """Whether this insert claimed the key (False: a claim already holds it)."""
    dialect = postgresql if session.get_bind().dialect.name == "postgresql" else sqlite
    # RETURNING says whether this insert claimed the key (psycopg reports no rowcount here).
    table = IdempotencyKey.__table__
    claim = dialect.insert(table).values(**values).on_conflict_do_nothing()
    return session.connection().execute(claim.returning(table.c.key)).first() is not None


def held(session: Session, *, tenant: str, route: str, key: str) -> IdempotencyKey:
    return session.execute(
        select(IdempotencyKey).where(*_same_key(tenant, route, key))
    ).scalar_one()
