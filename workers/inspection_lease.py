"""One delivery's hold on an upload it inspects: claim, renew from a small thread, decide.

Two deliveries of the same inspection (a re-send, a broker redelivery) cannot both run it: only
one claim succeeds. The lease is renewed while the inspection runs, however long it takes (a
sandboxed conversion may take minutes); if the worker dies, the lease runs out and the
maintenance sweep re-sends the upload (app/inspection_lease.py). ``inspect_under_lease`` is
the one skeleton both inspections (workers/inspect.py, workers/inspect_dataset.py) run in.
"""

from __future__ import annotations

import logging
import os
import shutil
import socket
import tempfile
import threading
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

from app import inspection_lease
from app.db.models import ModelFile, ModelStatus
from app.settings import get_settings
from app.storage import get_storage
from app.webhooks import service as webhooks
from compressor.errors import CompressionError
from workers import job_run
from workers.reasons import relative_reason

log = logging.getLogger("modelpress.inspect")
Found = TypeVar("Found")


class InspectionLease:
    def __init__(self, table: inspection_lease.Inspected, row_id: str) -> None:
        self.table = table
        self.row_id = row_id
        self.what = f"{table.__tablename__.removesuffix('s')} {row_id}"
        self.owner = f"{socket.gethostname()}|{os.getpid()}|{uuid.uuid4().hex[:8]}"
        self.lease_s = get_settings().worker.inspection_lease_s

    def claim(self) -> tuple[str, str] | None:
        """The stored file's key and format once this delivery holds the row; None when
        another does, or the row is decided or gone."""
        with job_run.session() as session, session.begin():
            claimed = inspection_lease.claim(
                session, self.table, self.row_id, owner=self.owner, lease_s=self.lease_s
            )
        if claimed:
            log.info("inspecting %s (owner %s)", self.what, self.owner)
        return claimed

    @contextmanager
    def renewing(self) -> Iterator[None]:
        stop = threading.Event()
        renewer = threading.Thread(
            target=self._renew_until, args=(stop,), name=f"lease-{self.row_id}", daemon=True
        )
        renewer.start()
        try:
            yield
        finally:
            stop.set()
            renewer.join()

    def _renew_until(self, stop: threading.Event) -> None:
        while not stop.wait(self.lease_s / 3):
            try:
                with job_run.session() as session, session.begin():
                    held = inspection_lease.renew(
                        session, self.table, self.row_id, owner=self.owner, lease_s=self.lease_s
                    )
            except Exception:  # the database may be briefly away; the next tick retries
                log.exception("could not renew the inspection lease of %s", self.what)
                continue
            if not held:
                log.warning(
                    "the inspection lease of %s was lost; its verdict will not count", self.what
                )
                return

    def decide(self, **values: Any) -> bool:
        """Record the verdict; False when this delivery no longer holds the row."""
        with job_run.session() as session, session.begin():
            decided = inspection_lease.finish(
                session, self.table, self.row_id, owner=self.owner, **values
            )
            if decided and self.table is ModelFile:
                webhooks.emit_model_inspected(session, self.row_id, values["status"])
            return decided

    def reject(self, storage_key: str, reason: str) -> str | None:
        """Rejected uploads keep their row (with the reason) but not their file."""
        if not self.decide(status=ModelStatus.REJECTED, rejection_reason=reason):
            return None
        get_storage().delete(storage_key)
        log.info("%s rejected: %s", self.what, reason)
        return ModelStatus.REJECTED


def inspect_under_lease(
    table: inspection_lease.Inspected,
    row_id: str,
    *,
    inspect: Callable[[str, str, Path], Found],
    accept: Callable[[InspectionLease, str, Found], str | None],
    upload_name: str,
    uninspectable: str,
) -> str | None:
    """Claim the upload, run ``inspect(storage_key, format, scratch)`` while the lease is
    renewed, then ``accept(lease, storage_key, found)``; return the new status, or None if there
    was nothing to do (another delivery holds or decided it, or it was deleted).

    A ``CompressionError`` rejects the upload with its text, files named relative to
    ``scratch / upload_name`` (where ``inspect`` put the upload) and server folders hidden; any
    other error rejects it with ``uninspectable`` (its text may quote the file or the server,
    so it goes to the log only): a reader bug must not leave an upload pending forever.
    """
    lease = InspectionLease(table, row_id)
    claimed = lease.claim()
    if claimed is None:
        return None
    storage_key, kind = claimed
    settings = get_settings()
    settings.tmp_dir.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(dir=settings.tmp_dir, prefix=f"inspect-{upload_name}-"))
    reason: str | None = None
    try:
        with lease.renewing():
            found = inspect(storage_key, kind, scratch)
    except CompressionError as exc:
        server_dirs = (scratch, settings.tmp_dir, settings.data_dir)
        upload_root = scratch / upload_name
        reason = relative_reason(str(exc), upload_root=upload_root, server_dirs=server_dirs)
    except Exception:
        log.exception("inspection of %s failed", lease.what)
        reason = uninspectable
    finally:
        # Before the row is decided: once it reads rejected, the unpacked upload is gone.
        shutil.rmtree(scratch, ignore_errors=True)
    if reason is not None:
        return lease.reject(storage_key, reason)
    return accept(lease, storage_key, found)
