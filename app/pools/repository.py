from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import timedelta

from sqlalchemy import delete, select, update
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


@dataclass
class WorkerFacts:
    """What a starting worker reports about itself."""

    name: str
    host: str
    pid: int
    queues: list[str]
    device: str
    gpu_name: str | None
    gpu_memory_bytes: int | None
    concurrency: int
    torch_threads: int
    restarts: int
    last_restart_reason: str | None


def register(session: Session, *, facts: WorkerFacts, replaces_pid: int | None) -> WorkerNode:
    """Insert or refresh a worker's row. ``replaces_pid``: the dead worker this one replaces on
    the same host, whose row goes now so the reaper re-queues its job at its next tick
    instead of waiting for the heartbeat to go stale."""
    node = session.get(WorkerNode, facts.name) or WorkerNode(name=facts.name)
    for field, value in asdict(facts).items():
        setattr(node, field, value)
    node.started_at = node.heartbeat_at = utcnow()
    session.add(node)
    if replaces_pid is not None:
        session.execute(
            delete(WorkerNode).where(
                WorkerNode.host == facts.host,
                WorkerNode.pid == replaces_pid,
                WorkerNode.name != facts.name,
            )
        )
    return node


def heartbeat(session: Session, *, name: str) -> None:
    session.execute(update(WorkerNode).where(WorkerNode.name == name).values(heartbeat_at=utcnow()))


def unregister(session: Session, *, name: str) -> None:
    session.execute(delete(WorkerNode).where(WorkerNode.name == name))
