"""Workers record themselves (host, device, GPU, concurrency) and keep a heartbeat."""

from __future__ import annotations

import os
import socket
from collections.abc import Sequence

from app.broker import QueueName
from app.pools import repository
from app.supervisor import REPLACES_PID_ENV, RESTART_REASON_ENV, RESTARTS_ENV
from workers import job_run


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
    on_gpu = QueueName.GPU in queues
    gpu_name, gpu_memory = _gpu() if on_gpu else (None, None)
    facts = repository.WorkerFacts(
        name=name,
        host=socket.gethostname(),
        pid=os.getpid(),
        queues=list(queues),
        device="gpu" if on_gpu else "cpu",
        gpu_name=gpu_name,
        gpu_memory_bytes=gpu_memory,
        concurrency=concurrency,
        torch_threads=threads,
        restarts=int(os.environ.get(RESTARTS_ENV) or 0),
        last_restart_reason=os.environ.get(RESTART_REASON_ENV) or None,
    )
    # Set by the supervisor when it saw the worker this one replaces die.
    replaces = os.environ.get(REPLACES_PID_ENV, "")
    with job_run.session() as session, session.begin():
        repository.register(
            session, facts=facts, replaces_pid=int(replaces) if replaces.isdigit() else None
        )


def heartbeat(name: str) -> None:
    with job_run.session() as session, session.begin():
        repository.heartbeat(session, name=name)


def unregister(name: str) -> None:
    with job_run.session() as session, session.begin():
        repository.unregister(session, name=name)
