from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from app.inspection import ModelInspection


class ModelRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    filename: str
    format: str = Field(
        description="huggingface, onnx or architecture once ready; while pending, what the "
        "upload looked like at the door (archive, onnx, torchscript, torch_export)"
    )
    status: Literal["pending", "inspecting", "ready", "rejected"] = Field(
        description="pending until a worker has inspected the upload (inspecting while one "
        "does); a job needs ready"
    )
    rejection_reason: str | None = None
    labels: dict[str, str]
    size_bytes: int
    sha256: str
    inspection: ModelInspection
    created_at: datetime
    updated_at: datetime
