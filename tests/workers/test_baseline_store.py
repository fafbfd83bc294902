"""The baselines table (migration d4b7e1a96c20) and the service's store on both databases:
stored figures and outputs read back, a second put replaces the first, tenants never share,
and a tenant's baselines go with its last upload of the bytes they were measured from."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session

from app.baselines import repository
from app.baselines.store import TenantBaselines
from app.db.models import Baseline, ModelFile
from app.models_upload.repository import same_bytes_elsewhere
from app.storage.local import LocalStorage
from compressor.baseline import StoredBaseline, graph_from
from compressor.measure.runtime import RuntimeMeasurement
from tests.fixtures.stack import ROOT

SHA = "a" * 64


@pytest.fixture
def transact(database_url: str, tmp_path: Path) -> Callable[[str, Any], Any]:
    """The database migrated to head, and one committed transaction per call."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("MODELPRESS_")}
    env.update(MODELPRESS_DATABASE_URL=database_url, MODELPRESS_DATA_DIR=str(tmp_path))
    subprocess.run(
        [sys.executable, "-m", "alembic", "upgrade", "head"],
        cwd=ROOT, env=env, check=True, capture_output=True,
    )  # fmt: skip
    engine = sa.create_engine(database_url)

    def call(_what: str, work: Callable[[Session], Any]) -> Any:
        with Session(engine) as session, session.begin():
            return work(session)

    return call


def _baseline(latency: float, outputs: np.ndarray) -> StoredBaseline:
    measurement = RuntimeMeasurement(
        latency_p50_ms=latency,
        latency_p95_ms=latency * 2,
        throughput_per_s=1000 / latency,
        peak_memory_bytes=1 << 20,
        batch_size=8,
        outputs=outputs,
        ran_on={"provider": "CPUExecutionProvider", "timer": "wall clock"},
    )
    stats = {"parameters": 10, "nonzero_parameters": 9, "dtypes": {"float32": 10}}
    return StoredBaseline(1234, stats, measurement, datetime(2026, 12, 4, 19, 0, tzinfo=UTC))


def test_stored_baselines_read_back_replace_and_stay_in_their_tenant(
    transact: Callable[[str, Any], Any], tmp_path: Path
) -> None:
    storage = LocalStorage(tmp_path / "storage")
    ours = TenantBaselines("alpha", model_sha256=SHA, transact=transact, storage=storage)
    assert ours.get("k" * 64) is None
    outputs = np.arange(24, dtype=np.float32).reshape(8, 3)
    ours.put("k" * 64, _baseline(2.5, outputs))
    found = ours.get("k" * 64)
    assert found is not None
    assert found.model_bytes == 1234 and found.stats["dtypes"] == {"float32": 10}
    assert found.measured_at == datetime(2026, 12, 4, 19, 0, tzinfo=UTC)
    assert found.measurement.metrics() == _baseline(2.5, outputs).measurement.metrics()
    assert found.measurement.ran_on["timer"] == "wall clock"
    np.testing.assert_array_equal(found.measurement.outputs, outputs)

    # The same key in another tenant, or with authentication off, is another row.
    assert (
        TenantBaselines("beta", model_sha256=SHA, transact=transact, storage=storage).get("k" * 64)
        is None
    )
    assert (
        TenantBaselines(None, model_sha256=SHA, transact=transact, storage=storage).get("k" * 64)
        is None
    )

    ours.put("k" * 64, _baseline(3.0, outputs + 1))  # measured again: replaced, old object gone
    again = ours.get("k" * 64)
    assert again is not None and again.measurement.latency_p50_ms == 3.0
    np.testing.assert_array_equal(again.measurement.outputs, outputs + 1)
    assert len(list((tmp_path / "storage").rglob("*.npz"))) == 1


def test_a_row_whose_outputs_are_gone_reads_as_not_stored(
    transact: Callable[[str, Any], Any], tmp_path: Path
) -> None:
    storage = LocalStorage(tmp_path / "storage")
    store = TenantBaselines("alpha", model_sha256=SHA, transact=transact, storage=storage)
    store.put("k" * 64, _baseline(2.5, np.zeros((8, 3), dtype=np.float32)))
    for path in (tmp_path / "storage").rglob("*.npz"):
        path.unlink()
    assert store.get("k" * 64) is None


def _model(tenant: str | None, sha256: str) -> ModelFile:
    return ModelFile(
        tenant=tenant, filename="m.zip", format="pytorch", size_bytes=1, sha256=sha256,
        storage_key="models/x/upload",
    )  # fmt: skip


def test_baselines_go_with_the_tenants_last_upload_of_their_bytes(
    transact: Callable[[str, Any], Any], tmp_path: Path
) -> None:
    storage = LocalStorage(tmp_path / "storage")
    outputs = np.zeros((8, 3), dtype=np.float32)
    for tenant, sha, key in [("alpha", SHA, "k"), ("alpha", "b" * 64, "l"), ("beta", SHA, "k")]:
        TenantBaselines(tenant, model_sha256=sha, transact=transact, storage=storage).put(
            key * 64, _baseline(2.5, outputs)
        )

    def models(session: Session) -> tuple[bool, bool]:
        first, second, other = _model("alpha", SHA), _model("alpha", SHA), _model("beta", "c" * 64)
        session.add_all([first, second, other])
        session.flush()
        return same_bytes_elsewhere(session, first), same_bytes_elsewhere(session, other)

    assert transact("models", models) == (True, False)
    deleted = transact(
        "deleting",
        lambda s: repository.delete_measured_from(s, tenant="alpha", model_sha256=SHA),
    )
    assert len(deleted) == 1 and deleted[0].startswith(f"baselines/{'k' * 64}/")
    remaining = transact(
        "reading",
        lambda s: sorted((b.tenant, b.model_sha256) for b in s.scalars(sa.select(Baseline))),
    )
    assert remaining == [("alpha", "b" * 64), ("beta", SHA)]  # other bytes, other tenant


def test_the_originals_graph_is_kept_replaced_and_deleted_with_its_figures(
    transact: Callable[[str, Any], Any], tmp_path: Path
) -> None:
    storage = LocalStorage(tmp_path / "storage")
    store = TenantBaselines("alpha", model_sha256=SHA, transact=transact, storage=storage)
    exported = tmp_path / "original.onnx"
    outputs = np.zeros((8, 3), dtype=np.float32)
    for content in (b"first export", b"second export"):  # measured again: the graph replaced
        exported.write_bytes(content)
        store.put("k" * 64, replace(_baseline(2.5, outputs), graph=graph_from(exported)))
    found = store.get("k" * 64)
    assert found is not None and found.graph is not None
    found.graph(tmp_path / "fetched.onnx")
    assert (tmp_path / "fetched.onnx").read_bytes() == b"second export"
    assert len(list((tmp_path / "storage").rglob("*.onnx"))) == 1
    # Without a graph, none is offered.
    store.put("l" * 64, _baseline(2.5, outputs))
    plain = store.get("l" * 64)
    assert plain is not None and plain.graph is None
    # Deleting the tenant's last upload of the bytes names every object, graph included.
    deleted = transact(
        "deleting",
        lambda s: repository.delete_measured_from(s, tenant="alpha", model_sha256=SHA),
    )
    stored = sorted(
        str(p.relative_to(tmp_path / "storage")) for p in (tmp_path / "storage").rglob("*.*")
    )
    assert sorted(deleted) == stored and len(stored) == 3  # two .npz, one .onnx
