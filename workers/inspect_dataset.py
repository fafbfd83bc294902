"""Inspecting a stored dataset, in a worker: the API only judged its headers (tensor files) or
its first row (JSONL). Tensor files are judged from their headers again; JSONL is read in full,
a bounded line at a time. Nothing is loaded into arrays. The row ends ``ready`` with the
inspection, or ``rejected`` with the reason and no stored file."""

from __future__ import annotations

import logging
import tempfile
from pathlib import Path

from app.datasets.service import dataset_limits
from app.db.models import Dataset, ModelStatus
from app.settings import get_settings
from app.storage import get_storage
from compressor.dataset_headers import inspect_dataset as inspect_dataset_file
from compressor.errors import CompressionError
from workers.inspection_lease import InspectionLease
from workers.reasons import relative_reason

log = logging.getLogger("modelpress.inspect")
# An unexpected failure's text may quote the file or the server; it goes to the log only.
UNINSPECTABLE = "the dataset could not be inspected; the server log has the details"


def inspect_dataset(dataset_id: str) -> str | None:
    """Inspect one pending dataset; return its new status, or None if there was nothing to do
    (another delivery holds or decided it, or it was deleted)."""
    lease = InspectionLease(Dataset, dataset_id)
    claimed = lease.claim()
    if claimed is None:
        return None
    storage_key, _ = claimed
    settings = get_settings()
    settings.tmp_dir.mkdir(parents=True, exist_ok=True)
    path = settings.tmp_dir / "dataset"  # where the file goes, once its scratch folder exists
    try:
        with (
            lease.renewing(),
            tempfile.TemporaryDirectory(dir=settings.tmp_dir, prefix="inspect-dataset-") as tmp,
        ):
            path = Path(tmp) / "dataset"
            get_storage().fetch_to(storage_key, path)
            inspection = inspect_dataset_file(path, dataset_limits())
    except CompressionError as exc:
        server_dirs = (settings.tmp_dir, settings.data_dir)
        reason = relative_reason(str(exc), upload_root=path, server_dirs=server_dirs)
        return lease.reject(storage_key, reason)
    except Exception:  # a reader bug must not leave the dataset pending forever
        log.exception("inspection of dataset %s failed", dataset_id)
        return lease.reject(storage_key, UNINSPECTABLE)
    values = {"status": ModelStatus.READY, "format": inspection["format"], "inspection": inspection}
    if not lease.decide(**values):
        return None
    log.info("%s is ready (%s, %s rows)", lease.what, inspection["format"], inspection["samples"])
    return ModelStatus.READY
