"""Uploads (models and datasets) inspected by one worker at a time, under a lease.

``pending`` -> ``inspecting`` is a conditional claim that records the owner and a lease expiry;
the owner renews the lease while it works and alone may record the verdict. A lease that
expires (its worker died or hung) puts the row back to ``pending``, and only pending rows are
re-sent, so a slow inspection is never queued again while it runs.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Result, select, update
from sqlalchemy.orm import Session

from app.db.models import Dataset, ModelFile, ModelStatus, utcnow

Inspected = type[ModelFile] | type[Dataset]


def _count(result: Result[Any]) -> int:
    return int(getattr(result, "rowcount", 0) or 0)


def claim(
    session: Session, table: Inspected, row_id: str, *, owner: str, lease_s: float
) -> tuple[str, str] | None:
    """Take a pending row: its stored file's key and format; None when it is not pending
    (another delivery holds it, or it is decided or deleted)."""
    now = utcnow()
    stmt = (
        update(table)
        .where(table.id == row_id, table.status == ModelStatus.PENDING)
        .values(
            status=ModelStatus.INSPECTING,
            inspect_owner=owner,
            lease_expires_at=now + timedelta(seconds=lease_s),
            updated_at=now,
        )
        .returning(table.storage_key, table.format)
    )
    row = session.execute(stmt).first()
    return (row[0], row[1]) if row else None


def renew(session: Session, table: Inspected, row_id: str, *, owner: str, lease_s: float) -> bool:
    """Extend the owner's lease; False when the owner has lost the row."""
    now = utcnow()
    stmt = (
        update(table)
        .where(_held_by(table, row_id, owner))
        .values(lease_expires_at=now + timedelta(seconds=lease_s), updated_at=now)
    )
    return _count(session.execute(stmt)) == 1


def finish(session: Session, table: Inspected, row_id: str, *, owner: str, **values: Any) -> bool:
    """Record the verdict; False when the owner's lease was taken back (or the row deleted)."""
    stmt = (
        update(table)
        .where(_held_by(table, row_id, owner))
        .values(**values, inspect_owner=None, lease_expires_at=None, updated_at=utcnow())
    )
    return _count(session.execute(stmt)) == 1


def due_for_resend(session: Session, table: Inspected, *, cutoff: datetime) -> list[str]:
    """Rows to send to the broker again: those whose lease expired (put back to pending here)
    and pending ones untouched since ``cutoff``. Each is marked touched by a conditional update,
    so of several workers sweeping at once only one re-sends a row."""
    now = utcnow()
    expired = (table.status == ModelStatus.INSPECTING) & (table.lease_expires_at < now)
    stale = (table.status == ModelStatus.PENDING) & (table.updated_at < cutoff)
    due = []
    for condition, reset in (
        (expired, {"inspect_owner": None, "lease_expires_at": None}),
        (stale, {}),
    ):
        for row_id in session.scalars(select(table.id).where(condition)).all():
            stmt = (
                update(table)
                .where(table.id == row_id, condition)
                .values(**reset, status=ModelStatus.PENDING, updated_at=now)
            )
            if _count(session.execute(stmt)) == 1:
                due.append(row_id)
    return due


def _held_by(table: Inspected, row_id: str, owner: str) -> Any:
    return (
        (table.id == row_id)
        & (table.status == ModelStatus.INSPECTING)
        & (table.inspect_owner == owner)
    )
