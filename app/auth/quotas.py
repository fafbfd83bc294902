"""Per-tenant quotas: bytes stored (models and datasets) and jobs queued or running. Counted in
the caller's tenant scope (app/auth/tenancy.py), so the sums are that tenant's alone."""

from __future__ import annotations

from sqlalchemy.orm import Session

from app import errors
from app.auth import repository
from app.auth.tenancy import session_tenant
from app.settings import get_settings


class QuotaExceeded(errors.AppError):
    status, slug, title = 429, "quota-exceeded", "Tenant quota exceeded"


def check_storage(session: Session, incoming_bytes: int) -> None:
    limit = get_settings().auth.tenant_max_stored_bytes
    if limit is None or session_tenant(session) is None:
        return
    used = repository.stored_bytes(session)
    if used + incoming_bytes > limit:
        raise QuotaExceeded(
            f"storing {incoming_bytes} more bytes would exceed this tenant's {limit} bytes "
            f"({used} in use); delete models or datasets first",
            limit=limit,
            used=used,
        )


def check_active_jobs(session: Session) -> None:
    limit = get_settings().auth.tenant_max_active_jobs
    if limit is None or session_tenant(session) is None:
        return
    active = repository.active_jobs(session)
    if active >= limit:
        error = QuotaExceeded(
            f"this tenant already has {active} jobs queued or running (limit {limit})",
            limit=limit,
            used=active,
        )
        error.retry_after_s = 30
        raise error
