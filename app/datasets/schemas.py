from __future__ import annotations

from pydantic import Field

from app.inspection import DatasetInspection
from app.upload_schemas import UploadRead


class DatasetRead(UploadRead):
    format: str = Field(
        description="npz, safetensors or jsonl, judged from the file's first bytes at upload"
    )
    inspection: DatasetInspection
