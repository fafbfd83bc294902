"""Who is calling: the FastAPI dependencies that read ``Authorization: Bearer <key>``.

The web page (app/ui) has its own sign-in cookie, scoped to ``/ui`` (app/ui/session.py); the
API takes the header only.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request

from app import errors
from app.auth.keys import find_active
from app.auth.tenancy import scope_to_tenant
from app.db.session import get_sessionmaker
from app.deps import SessionDep
from app.settings import get_settings


class Unauthorized(errors.AppError):
    status, slug, title = 401, "unauthorized", "Authentication required"


class Forbidden(errors.AppError):
    status, slug, title = 403, "forbidden", "Admin key required"


@dataclass(frozen=True)
class Caller:
    tenant: str | None  # None: authentication is off and no key was sent
    admin: bool
    key_id: str | None = None  # the API key's row, for what outlives the request (streams)


def _bearer(request: Request) -> str | None:
    header = request.headers.get("authorization")
    if header is None:
        return None
    scheme, _, key = header.partition(" ")
    if scheme.lower() != "bearer" or not key.strip():
        raise Unauthorized("send the API key as 'Authorization: Bearer <key>'")
    return key.strip()


def authenticate(request: Request, session: SessionDep) -> Caller:
    """The caller of this request; its session then sees only the caller's tenant's rows."""
    key = _bearer(request)
    if key is None:
        if get_settings().auth.auth_required:
            raise Unauthorized("this server requires an API key: 'Authorization: Bearer <key>'")
        return Caller(tenant=None, admin=True)
    # Its own short session: the request's would hold a pooled connection while the request
    # waits for a thread to run its route, and many concurrent requests then exhaust the pool.
    with get_sessionmaker()() as lookup:
        row = find_active(lookup, key)
        tenant, admin, key_id = (row.tenant, row.admin, row.id) if row else (None, False, None)
    if tenant is None:
        raise Unauthorized("the API key is unknown or revoked")
    scope_to_tenant(session, tenant)
    return Caller(tenant=tenant, admin=admin, key_id=key_id)


CallerDep = Annotated[Caller, Depends(authenticate)]


def require_admin(caller: CallerDep) -> Caller:
    if not caller.admin:
        raise Forbidden("this view is for operators: use an admin key")
    return caller
