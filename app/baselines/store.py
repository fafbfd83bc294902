"""The service's baseline store (compressor/baseline.py's ``BaselineStore``): one tenant's
rows, figures as JSON, outputs as an .npz object in storage. A job process builds one for its
job's tenant and hands it to ``compress_model``."""

from __future__ import annotations

import logging
import tempfile
import uuid
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
from sqlalchemy.orm import Session

from app.baselines import repository
from app.db.session import on_commit
from app.storage import Storage, get_storage
from compressor.baseline import StoredBaseline
from compressor.measure.runtime import RuntimeMeasurement

log = logging.getLogger("modelpress.baselines")
# One committed transaction, retried while the database is away (workers/job_run.py's
# ``in_transaction``): passed in, since app/ never imports workers/.
Transact = Callable[[str, Callable[[Session], Any]], Any]


def outputs_key(key: str) -> str:
    """A new object per measurement: two jobs storing one key at once never mix their files."""
    return f"baselines/{key}/{uuid.uuid4()}.npz"


class TenantBaselines:
    def __init__(
        self,
        tenant: str | None,
        *,
        model_sha256: str,
        transact: Transact,
        storage: Storage | None = None,
    ):
        self.tenant = tenant or ""
        self.model_sha256 = model_sha256  # the job's upload: its deletion deletes what it measured
        self._transact = transact
        self._storage = storage or get_storage()

    def get(self, key: str) -> StoredBaseline | None:
        def read(session: Session) -> tuple[dict[str, Any], str, datetime] | None:
            row = repository.get(session, tenant=self.tenant, key=key)
            return None if row is None else (row.figures, row.outputs_key, row.measured_at)

        found = self._transact(f"reading baseline {key}", read)
        if found is None:
            return None
        figures, stored_key, measured_at = found
        outputs = self._outputs(stored_key)
        if outputs is None:
            return None  # measured again, and stored anew
        measurement = RuntimeMeasurement(
            outputs=outputs, ran_on=figures["ran_on"], **figures["metrics"]
        )
        return StoredBaseline(figures["model_bytes"], figures["stats"], measurement, measured_at)

    def put(self, key: str, baseline: StoredBaseline) -> None:
        measurement = baseline.measurement
        new_key = outputs_key(key)
        try:
            with tempfile.TemporaryDirectory(prefix="modelpress-baseline-") as tmp:
                path = Path(tmp) / "outputs.npz"
                np.savez(path, outputs=measurement.outputs)
                self._storage.put_file(new_key, path)
        except Exception:
            # Keeping figures for later is a saving, not the job: it goes on without them.
            log.warning("could not store the outputs of baseline %s", key, exc_info=True)
            return
        figures = {
            "model_bytes": baseline.model_bytes,
            "stats": baseline.stats,
            "metrics": measurement.metrics(),
            "ran_on": measurement.ran_on,
        }

        def write(session: Session) -> None:
            before = repository.get(session, tenant=self.tenant, key=key)
            if before is not None:  # the replaced outputs go once the new row has committed
                replaced = before.outputs_key
                on_commit(session, lambda: self._storage.delete(replaced))
            repository.put(
                session,
                tenant=self.tenant,
                key=key,
                figures=figures,
                outputs_key=new_key,
                measured_at=baseline.measured_at,
                model_sha256=self.model_sha256,
            )

        self._transact(f"storing baseline {key}", write)

    def _outputs(self, key: str) -> np.ndarray | None:
        """The stored outputs, or None where they cannot be read (then the original is measured)."""
        try:
            with tempfile.TemporaryDirectory(prefix="modelpress-baseline-") as tmp:
                path = Path(tmp) / "outputs.npz"
                self._storage.fetch_to(key, path)
                with np.load(path) as stored:
                    return np.asarray(stored["outputs"])
        except Exception:
            log.warning("could not read the outputs of baseline object %s", key, exc_info=True)
            return None
