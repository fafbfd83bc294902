"""The service's baseline store (compressor/baseline.py's ``BaselineStore``): one tenant's
rows, figures as JSON, outputs as an .npz object in storage. A job process builds one for its
job's tenant and hands it to ``compress_model``."""

from __future__ import annotations

import logging
import tempfile
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
from sqlalchemy.orm import Session

from app.baselines import repository
from app.baselines.objects import graph_key, outputs_key, stored_objects
from app.db.session import on_commit
from app.storage import Storage, get_storage
from compressor.baseline import GraphWriter, StoredBaseline
from compressor.measure.runtime import RuntimeMeasurement

log = logging.getLogger("modelpress.baselines")
# One committed transaction, retried while the database is away (workers/job_run.py's
# ``in_transaction``): passed in, since app/ never imports workers/.
Transact = Callable[[str, Callable[[Session], Any]], Any]


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
        graph = None
        if figures.get("graph"):
            graph_object = graph_key(stored_key)
            graph = lambda dest: self._storage.fetch_to(graph_object, dest)  # noqa: E731
        return StoredBaseline(
            figures["model_bytes"], figures["stats"], measurement, measured_at, graph=graph
        )

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
            "graph": baseline.graph is not None and self._put_graph(new_key, baseline.graph),
        }

        def write(session: Session) -> None:
            before = repository.get(session, tenant=self.tenant, key=key)
            if before is not None:  # the replaced objects go once the new row has committed
                replaced = stored_objects(before.outputs_key, before.figures)
                on_commit(session, lambda: self._delete(replaced))
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

    def _delete(self, keys: list[str]) -> None:
        for key in keys:
            self._storage.delete(key)

    def _put_graph(self, outputs: str, graph: GraphWriter) -> bool:
        try:
            with tempfile.TemporaryDirectory(prefix="modelpress-baseline-") as tmp:
                path = Path(tmp) / "original.onnx"
                graph(path)
                self._storage.put_file(graph_key(outputs), path)
        except Exception:  # later jobs export the original again: slower, not wrong
            log.warning("could not store the original's graph of %s", outputs, exc_info=True)
            return False
        return True

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
