"""What the API answers for a stored upload: models and datasets share every field but the
meaning of ``format`` and the kind of ``inspection``, which each feature's schema narrows."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from app.inspection import AsStored


class UploadRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    filename: str
    format: str
    status: Literal["pending", "inspecting", "ready", "rejected"] = Field(
        description="pending until a worker has inspected the upload (inspecting while one "
        "does); a job needs ready"
    )
    rejection_reason: str | None = None
    labels: dict[str, str]
    size_bytes: int
    sha256: str
    inspection: AsStored
    created_at: datetime
    updated_at: datetime
