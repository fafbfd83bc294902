"""The tenant scope of a session: once set, every ORM query, update and delete of a tenant's
rows gets ``tenant = :t`` added, and new rows are stamped with it. One place enforces it, so no
route can forget it; another tenant's row is simply not found (404, no existence leak).

Workers and maintenance never set a scope: they act for every tenant.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import event
from sqlalchemy.orm import ORMExecuteState, Session, with_loader_criteria

from app.db.models import Dataset, Job, ModelFile, Webhook

OWNED: tuple[type[Any], ...] = (ModelFile, Dataset, Job, Webhook)
_SCOPE = "modelpress.tenant"


def scope_to_tenant(session: Session, tenant: str) -> None:
    session.info[_SCOPE] = tenant


def session_tenant(session: Session) -> str | None:
    return session.info.get(_SCOPE)


@event.listens_for(Session, "do_orm_execute")
def _only_own_rows(state: ORMExecuteState) -> None:
    tenant = state.session.info.get(_SCOPE)
    if tenant is None or state.is_column_load or state.is_relationship_load:
        return
    if state.is_select or state.is_update or state.is_delete:
        for owned in OWNED:
            state.statement = state.statement.options(
                with_loader_criteria(owned, owned.tenant == tenant, include_aliases=True)
            )


@event.listens_for(Session, "before_flush")
def _stamp_new_rows(session: Session, _context: Any, _instances: Any) -> None:
    tenant = session.info.get(_SCOPE)
    if tenant is None:
        return
    for row in session.new:
        if isinstance(row, OWNED) and row.tenant is None:
            row.tenant = tenant
