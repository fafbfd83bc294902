"""Workers record themselves (host, device, GPU, concurrency) and keep a heartbeat."""

from __future__ import annotations

import os
import socket
from collections.abc import Sequence

from sqlalchemy import delete
from sqlalchemy.orm import Session

from app.db.models import WorkerNode, utcnow
from app.db.session import get_sessionmaker
from app.supervisor import REPLACES_PID_ENV, RESTART_REASON_ENV, RESTARTS_ENV


def _gpu() -> tuple[str | None, int | None]:
    try:
        import torch

        if torch.cuda.is_available():
            props = torch.cuda.get_device_properties(0)
            return props.name, int(props.total_memory)
    except Exception:  # no usable CUDA: the worker still serves, and says so
        pass
    return None, None


def register(*, name: str, queues: Sequence[str], concurrency: int, threads: int) -> None:
    gpu_name, gpu_memory = _gpu() if "gpu" in queues else (None, None)
    with get_sessionmaker().begin() as session:
        node = session.get(WorkerNode, name) or WorkerNode(name=name)
        node.host = socket.gethostname()
        node.pid = os.getpid()
        node.queues = list(queues)
        node.device = "gpu" if "gpu" in queues else "cpu"
        node.gpu_name = gpu_name
        node.gpu_memory_bytes = gpu_memory
        node.concurrency = concurrency
        node.torch_threads = threads
        node.started_at = utcnow()
        node.heartbeat_at = utcnow()
        node.restarts = int(os.environ.get(RESTARTS_ENV) or 0)
        node.last_restart_reason = os.environ.get(RESTART_REASON_ENV) or None
        session.add(node)
        _forget_predecessor(session, node.host, keep=name)


def _forget_predecessor(session: Session, host: str, *, keep: str) -> None:
    """The supervisor saw the worker we replace die: its row goes now, so the reaper re-queues
    its job at its next tick instead of waiting for the heartbeat to go stale."""
    pid = os.environ.get(REPLACES_PID_ENV, "")
    if pid.isdigit():
        session.execute(
            delete(WorkerNode).where(
                WorkerNode.host == host, WorkerNode.pid == int(pid), WorkerNode.name != keep
            )
        )


def heartbeat(name: str) -> None:
    with get_sessionmaker().begin() as session:
        node = session.get(WorkerNode, name)
        if node is not None:
            node.heartbeat_at = utcnow()


def unregister(name: str) -> None:
    with get_sessionmaker().begin() as session:
        session.execute(delete(WorkerNode).where(WorkerNode.name == name))
