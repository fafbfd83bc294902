from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict

from app.inspection import DatasetInspection


class DatasetRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    filename: str
    format: str
    size_bytes: int
    sha256: str
    inspection: DatasetInspection
    created_at: datetime
