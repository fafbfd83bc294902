"""``/v1/tenants/{tenant}/share``: an operator's running-job share per tenant (admin key)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path

from app.deps import SessionDep
from app.errors import problem_responses
from app.jobs import shares
from app.jobs.schemas import TenantShareRead, TenantShareWrite

router = APIRouter(prefix="/v1/tenants", tags=["tenants"])
TenantPath = Annotated[str, Path(min_length=1, max_length=64)]


def _read(session: SessionDep, tenant: str) -> TenantShareRead:
    return TenantShareRead(
        tenant=tenant,
        running_jobs=shares.share_of(session, tenant),
        source="default" if shares.is_default(session, tenant) else "operator",
    )


@router.get(
    "/{tenant}/share",
    response_model=TenantShareRead,
    responses=problem_responses(422),
    summary="A tenant's running-job share",
)
def get_tenant_share(tenant: TenantPath, session: SessionDep) -> TenantShareRead:
    return _read(session, tenant)


@router.put(
    "/{tenant}/share",
    response_model=TenantShareRead,
    responses=problem_responses(422),
    summary="Set a tenant's running-job share; its jobs beyond it wait in the database",
)
def set_tenant_share(
    tenant: TenantPath, body: TenantShareWrite, session: SessionDep
) -> TenantShareRead:
    shares.set_share(session, tenant, body.running_jobs)
    return _read(session, tenant)
