"""What every feature's repository would otherwise write again: a row by id, adding a row, and a
page of rows, newest first (after polar's ``RepositoryBase``).

No tenant filter is written here, nor in the repositories: a request's session is scoped to its
tenant (app/auth/tenancy.py adds ``tenant = :t`` to every query of a tenant's rows), so a page
or a lookup already holds only the caller's rows, and another tenant's id is simply not found.
A feature's own queries stay in its ``repository.py`` next to the ones it takes from here.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any, Generic, Protocol, TypeVar

from sqlalchemy import ColumnElement, func, select
from sqlalchemy.orm import Session

from app.db.models import is_valid_id


class Listed(Protocol):
    """A row with a string id and a creation time: what ``page`` orders by."""

    id: str
    created_at: datetime


Row = TypeVar("Row", bound=Listed)


class RepositoryBase(Generic[Row]):
    def __init__(self, model: type[Row]) -> None:
        self.model = model

    def get(self, session: Session, row_id: str) -> Row | None:
        """The row, or None; an id that is not a UUID finds nothing without a query."""
        return session.get(self.model, row_id) if is_valid_id(row_id) else None

    def add(self, session: Session, row: Row) -> Row:
        """Insert now (flush), so a constraint fails here and not at the commit."""
        session.add(row)
        session.flush()
        return row

    def page(
        self, session: Session, *where: ColumnElement[bool], limit: int, offset: int
    ) -> tuple[Sequence[Row], int]:
        """Rows matching ``where``, newest first (id breaks ties), and how many match in all."""
        model: Any = self.model  # the class's columns (the Protocol types what rows hold)
        total = session.scalar(select(func.count()).select_from(model).where(*where)) or 0
        rows = session.scalars(
            select(model)
            .where(*where)
            .order_by(model.created_at.desc(), model.id)
            .limit(limit)
            .offset(offset)
        ).all()
        return rows, total
