"""Every query of the stored baselines, by tenant and key (app/baselines/store.py uses them)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from app.baselines.objects import stored_objects
from app.db.models import Baseline


def get(session: Session, *, tenant: str, key: str) -> Baseline | None:
    return session.get(Baseline, (tenant, key))


def put(
    session: Session,
    *,
    tenant: str,
    key: str,
    figures: dict[str, Any],
    outputs_key: str,
    measured_at: datetime,
    model_sha256: str,
) -> None:
    """Insert, or replace the row two jobs measuring the same key at once may both write."""
    dialect = postgresql if session.get_bind().dialect.name == "postgresql" else sqlite
    values = {
        "figures": figures,
        "outputs_key": outputs_key,
        "measured_at": measured_at,
        "model_sha256": model_sha256,
    }
    upsert = (
        dialect.insert(Baseline.__table__)
        .values(tenant=tenant, key=key, **values)
        .on_conflict_do_update(index_elements=["tenant", "key"], set_=values)
    )
    session.connection().execute(upsert)


def delete_measured_from(session: Session, *, tenant: str | None, model_sha256: str) -> list[str]:
    """Delete the tenant's baselines measured from uploads with these bytes; their storage
    objects' keys (outputs, graph), for the caller to delete once this has committed."""
    measured_from = (Baseline.tenant == (tenant or "")) & (Baseline.model_sha256 == model_sha256)
    rows = session.execute(select(Baseline.outputs_key, Baseline.figures).where(measured_from))
    keys = [key for outputs, figures in rows for key in stored_objects(outputs, figures)]
    session.execute(delete(Baseline).where(measured_from))
    return keys
