"""Workers record themselves (host, device, GPU, concurrency) and keep a heartbeat."""

from __future__ import annotations

import os
import socket
from collections.abc import Sequence

from sqlalchemy import delete

from app.db.models import WorkerNode, utcnow
from app.db.session import get_sessionmaker


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
        session.add(node)


def heartbeat(name: str) -> None:
    with get_sessionmaker().begin() as session:
        node = session.get(WorkerNode, name)
        if node is not None:
            node.heartbeat_at = utcnow()


def unregister(name: str) -> None:
    with get_sessionmaker().begin() as session:
        session.execute(delete(WorkerNode).where(WorkerNode.name == name))
