from __future__ import annotations

from pydantic import Field

from app.inspection import ModelInspection
from app.upload_schemas import UploadRead


class ModelRead(UploadRead):
    format: str = Field(
        description="huggingface, onnx or architecture once ready; while pending, what the "
        "upload looked like at the door (archive, onnx, torchscript, torch_export)"
    )
    inspection: ModelInspection
