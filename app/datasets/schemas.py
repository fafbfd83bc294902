from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from app.inspection import DatasetInspection


class DatasetRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    filename: str
    format: str = Field(
        description="npz, safetensors or jsonl, judged from the file's first bytes at upload"
    )
    status: Literal["pending", "inspecting", "ready", "rejected"] = Field(
        description="pending until a worker has inspected the upload (inspecting while one "
        "does); a job needs ready"
    )
    rejection_reason: str | None = None
    labels: dict[str, str]
    size_bytes: int
    sha256: str
    inspection: DatasetInspection
    created_at: datetime
    updated_at: datetime
