from __future__ import annotations

from fastapi import APIRouter

from app.deps import SessionDep
from app.pools import repository
from app.pools.schemas import WorkerRead
from app.settings import get_settings

router = APIRouter(prefix="/v1/workers", tags=["workers"])


@router.get("", response_model=list[WorkerRead], summary="Live workers (recent heartbeat)")
def list_workers(session: SessionDep) -> list[WorkerRead]:
    stale = get_settings().worker.stale_after_s
    return [
        WorkerRead.model_validate(w) for w in repository.live_workers(session, stale_after_s=stale)
    ]
