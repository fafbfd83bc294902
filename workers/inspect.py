"""Inspecting a stored upload, in a worker: the heavy half of accepting a model.

The API only screened the upload (headers and archive indexes). Here it is unpacked and read,
and an executable format (TorchScript, torch.export) is opened only inside the sandbox and
converted to ONNX, which then replaces it: no job ever touches the executable file.
The row ends ``ready`` with the inspection, or ``rejected`` with the reason and no stored file.
"""

from __future__ import annotations

import logging
import tempfile
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from app.db.models import ModelFile, ModelStatus
from app.settings import get_settings
from app.storage import get_storage
from compressor.formats.detect import inspect_model_dir
from compressor.formats.executable import convert_executable_to_onnx
from compressor.formats.hf import check_weights_fit_config
from compressor.formats.onnx_torch import inspect_conversion
from compressor.sandbox import SandboxLimits, default_hidden
from workers.inspection_lease import InspectionLease, inspect_under_lease
from workers.unpacking import fetch_model

log = logging.getLogger("modelpress.inspect")
EXECUTABLE_KINDS = ("torchscript", "torch_export")
# An unexpected failure's text may quote the file or the server; it goes to the log only.
UNINSPECTABLE = "the model could not be inspected; the server log has the details"


@dataclass
class Verdict:
    format: str
    inspection: dict[str, Any]
    new_key: str | None = None  # the converted model that replaces an executable upload


def inspect_model(model_id: str) -> str | None:
    """Inspect one pending model; return its new status, or None if there was nothing to do
    (another delivery holds or decided it, or it was deleted)."""
    return inspect_under_lease(
        ModelFile,
        model_id,
        # Looked up at each call, so a test may stand in for _inspect.
        inspect=lambda storage_key, kind, work: _inspect(model_id, storage_key, kind, work),
        accept=_accept,
        upload_name="model",  # fetch_model unpacks into work / "model"
        uninspectable=UNINSPECTABLE,
    )


def _inspect(model_id: str, storage_key: str, kind: str, work: Path) -> Verdict:
    if kind in EXECUTABLE_KINDS:
        upload = work / "upload.bin"
        get_storage().fetch_to(storage_key, upload)
        return _convert_executable(model_id, upload, kind, work)
    root = fetch_model(storage_key, work)
    inspection = inspect_model_dir(root)
    if inspection["format"] == "huggingface":
        inspection["weights_check"] = check_weights_fit_config(root)
    if inspection["format"] == "onnx":
        # Recorded so a torch-stage job on a graph that cannot convert is refused at submission.
        inspection["torch_conversion"] = inspect_conversion(root, inspection)
    return Verdict(format=str(inspection["format"]), inspection=inspection)


def _convert_executable(model_id: str, upload: Path, kind: str, work: Path) -> Verdict:
    settings = get_settings()
    limits = SandboxLimits(
        memory_bytes=settings.uploads.sandbox_memory_bytes,
        cpu_seconds=settings.uploads.sandbox_time_limit_s,
        wall_seconds=float(settings.uploads.sandbox_time_limit_s),
    )
    # The data directory, temp dir (other cages), /run sockets and home are hidden from the
    # child; only its own folder stays visible inside the hidden temp dir.
    with tempfile.TemporaryDirectory(prefix="modelpress-sandbox-") as cage:
        converted = convert_executable_to_onnx(
            upload,
            work / "converted",
            kind=kind,  # type: ignore[arg-type]
            workdir=Path(cage),
            hidden=default_hidden([settings.data_dir]),
            limits=limits,
        )
    onnx_path = work / "converted" / "model.onnx"
    inspection = inspect_model_dir(work / "converted")
    inspection["converted_from"] = {"format": kind, **converted}
    inspection["torch_conversion"] = inspect_conversion(work / "converted", inspection)
    new_key = f"models/{model_id}/converted-{uuid.uuid4().hex[:12]}.onnx"
    get_storage().put_file(new_key, onnx_path)
    return Verdict(format="onnx", inspection=inspection, new_key=new_key)


def _accept(lease: InspectionLease, storage_key: str, verdict: Verdict) -> str | None:
    values: dict[str, Any] = {
        "status": ModelStatus.READY,
        "format": verdict.format,
        "inspection": verdict.inspection,
    }
    if verdict.new_key:
        values["storage_key"] = verdict.new_key
    won = lease.decide(**values)
    storage = get_storage()
    if not won:  # the lease was taken back, or the model was deleted meanwhile
        if verdict.new_key:
            storage.delete(verdict.new_key)
        return None
    if verdict.new_key:
        storage.delete(storage_key)  # the executable original is never needed again
    log.info("%s is ready (%s)", lease.what, verdict.format)
    return ModelStatus.READY
