"""Inspecting a stored dataset, in a worker: the API only judged its headers (tensor files) or
its first row (JSONL). Tensor files are judged from their headers again; JSONL is read in full,
a bounded line at a time. Nothing is loaded into arrays. The row ends ``ready`` with the
inspection, or ``rejected`` with the reason and no stored file."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from app.datasets.service import dataset_limits
from app.db.models import Dataset, ModelStatus
from app.storage import get_storage
from compressor.dataset_headers import inspect_dataset as inspect_dataset_file
from workers.inspection_lease import InspectionLease, inspect_under_lease

log = logging.getLogger("modelpress.inspect")
# An unexpected failure's text may quote the file or the server; it goes to the log only.
UNINSPECTABLE = "the dataset could not be inspected; the server log has the details"


def inspect_dataset(dataset_id: str) -> str | None:
    """Inspect one pending dataset; return its new status, or None if there was nothing to do
    (another delivery holds or decided it, or it was deleted)."""
    return inspect_under_lease(
        Dataset,
        dataset_id,
        inspect=_inspect,
        accept=_accept,
        upload_name="dataset",
        uninspectable=UNINSPECTABLE,
    )


def _inspect(storage_key: str, _kind: str, work: Path) -> dict[str, Any]:
    path = work / "dataset"
    get_storage().fetch_to(storage_key, path)
    return inspect_dataset_file(path, dataset_limits())


def _accept(lease: InspectionLease, _storage_key: str, inspection: dict[str, Any]) -> str | None:
    values = {"status": ModelStatus.READY, "format": inspection["format"], "inspection": inspection}
    if not lease.decide(**values):
        return None
    log.info("%s is ready (%s, %s rows)", lease.what, inspection["format"], inspection["samples"])
    return ModelStatus.READY
