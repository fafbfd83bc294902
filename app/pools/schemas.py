from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field


class WorkerRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    name: str
    host: str
    pid: int
    queues: list[str]
    device: str
    gpu_name: str | None
    gpu_memory_bytes: int | None
    concurrency: int
    torch_threads: int
    started_at: datetime
    heartbeat_at: datetime
    restarts: int = Field(
        0, description="times `modelpress run` restarted this worker after it died"
    )
    last_restart_reason: str | None = Field(
        None, description="why the previous worker process stopped: signal, exit code, OOM"
    )
