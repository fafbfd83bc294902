"""One delivery's hold on an upload it inspects: claim, renew from a small thread, decide.

Two deliveries of the same inspection (a re-send, a broker redelivery) cannot both run it: only
one claim succeeds. The lease is renewed while the inspection runs, however long it takes (a
sandboxed conversion may take minutes); if the worker dies, the lease runs out and the
maintenance sweep re-sends the upload (app/inspection_lease.py).
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from app import inspection_lease
from app.db.models import ModelFile, ModelStatus
from app.db.session import get_sessionmaker
from app.settings import get_settings
from app.storage import get_storage
from app.webhooks import service as webhooks

log = logging.getLogger("modelpress.inspect")


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
        with get_sessionmaker().begin() as session:
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
                with get_sessionmaker().begin() as session:
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
        with get_sessionmaker().begin() as session:
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
