from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.db.models import WorkerNode, utcnow


def live_workers(session: Session, *, stale_after_s: float) -> Sequence[WorkerNode]:
    cutoff = utcnow() - timedelta(seconds=stale_after_s)
    return session.scalars(
        select(WorkerNode).where(WorkerNode.heartbeat_at >= cutoff).order_by(WorkerNode.name)
    ).all()


def is_live(session: Session, name: str, *, stale_after_s: float) -> bool:
    node = session.get(WorkerNode, name)
    return node is not None and node.heartbeat_at >= utcnow() - timedelta(seconds=stale_after_s)


def queue_has_live_worker(session: Session, queue: str, *, stale_after_s: float) -> bool:
    return any(queue in node.queues for node in live_workers(session, stale_after_s=stale_after_s))


def queues_without_live_worker(
    session: Session, queues: Sequence[str], *, stale_after_s: float
) -> list[str]:
    served = {q for node in live_workers(session, stale_after_s=stale_after_s) for q in node.queues}
    return [q for q in queues if q not in served]
