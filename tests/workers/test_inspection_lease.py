"""Inspections run once, under a lease: a second delivery of the same upload does nothing while
the first runs, a slow inspection keeps its lease, and only an expired lease is re-sent.

In-process against a fresh migrated database (SQLite, and PostgreSQL when configured), with the
real inspection of a real digits model, local storage and the filesystem broker.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import workers.inspect as inspect_module
from app.db.models import Dataset, ModelFile, ModelStatus, new_id, utcnow
from app.db.session import get_engine, get_sessionmaker
from app.storage import get_storage
from tests.fixtures.helpers import npz_bytes
from tests.fixtures.stack import _postgres_database, unavailable
from tests.workers.conftest import _clear_caches, broker_messages
from workers.inspect import UNINSPECTABLE, inspect_model
from workers.inspect_dataset import inspect_dataset
from workers.maintenance import reconcile_inspections

LEASE_S = 0.6


@pytest.fixture(params=["sqlite", "postgres"])
def data_dir(
    request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Path]:
    """A fresh migrated database with short inspection leases; the filesystem broker."""
    for name in ("MODELPRESS_DATABASE_URL", "MODELPRESS_BROKER_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("MODELPRESS_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("MODELPRESS_STORAGE_BACKEND", "local")
    monkeypatch.setenv("MODELPRESS_INSPECTION_LEASE_S", str(LEASE_S))
    database = None
    if request.param == "postgres":
        server = os.environ.get("MODELPRESS_TEST_DATABASE_URL")
        if not server:
            unavailable("MODELPRESS_TEST_DATABASE_URL is not set")
        database = _postgres_database(str(server))
        monkeypatch.setenv("MODELPRESS_DATABASE_URL", next(database))
    _clear_caches()
    from app.cli import migrate

    migrate()
    yield tmp_path
    get_engine().dispose()
    _clear_caches()
    if database is not None:
        for _ in database:
            pass


def stored_row(table: type[ModelFile] | type[Dataset], content: bytes, fmt: str) -> str:
    """An upload as the API leaves it: its file stored, its row pending."""
    row = table(
        id=new_id(),
        filename="upload",
        format=fmt,
        status=ModelStatus.PENDING,
        size_bytes=len(content),
        sha256="0" * 64,
        storage_key="",
        inspection={},
    )
    row.storage_key = f"{table.__tablename__}/{row.id}/upload"
    source = Path(os.environ["MODELPRESS_DATA_DIR"]) / f"{row.id}.bin"
    source.write_bytes(content)
    get_storage().put_file(row.storage_key, source)
    source.unlink()
    with get_sessionmaker().begin() as session:
        session.add(row)
    return row.id


def read(table: type[ModelFile] | type[Dataset], row_id: str) -> Any:
    with get_sessionmaker().begin() as session:
        row = session.get(table, row_id)
        assert row is not None
        session.expunge(row)
        return row


def gated_inspection(
    monkeypatch: pytest.MonkeyPatch,
) -> tuple[list[str], threading.Event, threading.Event]:
    """Count real inspections of models; the first waits at ``release`` after ``entered``."""
    calls: list[str] = []
    entered, release = threading.Event(), threading.Event()
    real: Callable[..., Any] = inspect_module._inspect

    def counted(model_id: str, *args: Any) -> Any:
        calls.append(model_id)
        if len(calls) == 1:
            entered.set()
            release.wait(30)
        return real(model_id, *args)

    monkeypatch.setattr(inspect_module, "_inspect", counted)
    return calls, entered, release


class TestOneDelivery:
    def test_two_concurrent_deliveries_run_the_inspection_once(
        self, data_dir: Path, digits_zip: bytes, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        model_id = stored_row(ModelFile, digits_zip, "archive")
        calls, entered, release = gated_inspection(monkeypatch)
        outcomes: list[str | None] = []
        first = threading.Thread(target=lambda: outcomes.append(inspect_model(model_id)))
        first.start()
        assert entered.wait(60), "the first delivery never started inspecting"
        second = threading.Thread(target=lambda: outcomes.append(inspect_model(model_id)))
        second.start()
        second.join(timeout=60)  # the duplicate returns while the first still runs
        assert calls == [model_id], "the second delivery ran the inspection again"
        assert outcomes == [None]
        assert read(ModelFile, model_id).status == ModelStatus.INSPECTING
        release.set()
        first.join(timeout=120)
        assert outcomes == [None, ModelStatus.READY]
        model = read(ModelFile, model_id)
        assert model.status == ModelStatus.READY
        assert model.inspect_owner is None and model.lease_expires_at is None

    def test_a_decided_upload_is_not_inspected_again(
        self, data_dir: Path, digits_zip: bytes
    ) -> None:
        model_id = stored_row(ModelFile, digits_zip, "archive")
        assert inspect_model(model_id) == ModelStatus.READY
        assert inspect_model(model_id) is None


class TestLease:
    def test_a_slow_inspection_keeps_its_lease_and_is_not_resent(
        self, data_dir: Path, digits_zip: bytes, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.setenv("MODELPRESS_RECONCILE_AFTER_S", "0.1")
        _clear_caches()
        model_id = stored_row(ModelFile, digits_zip, "archive")
        _, entered, release = gated_inspection(monkeypatch)
        worker = threading.Thread(target=inspect_model, args=(model_id,))
        worker.start()
        assert entered.wait(60)
        before = len(broker_messages(data_dir))
        resent = []
        for _ in range(5):  # five sweeps over about four lease lengths
            threading.Event().wait(LEASE_S * 0.8)
            resent += reconcile_inspections()
        assert resent == [], "a running inspection was re-sent"
        assert len(broker_messages(data_dir)) == before
        assert read(ModelFile, model_id).lease_expires_at > utcnow()
        release.set()
        worker.join(timeout=120)
        assert read(ModelFile, model_id).status == ModelStatus.READY

    def test_an_expired_lease_is_resent_and_its_late_verdict_does_not_count(
        self, data_dir: Path, digits_zip: bytes, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        model_id = stored_row(ModelFile, digits_zip, "archive")
        calls, entered, release = gated_inspection(monkeypatch)
        stalled: list[str | None] = []
        worker = threading.Thread(target=lambda: stalled.append(inspect_model(model_id)))
        worker.start()
        assert entered.wait(60)
        # The worker hangs without renewing (as if its host froze): its lease runs out.
        with get_sessionmaker().begin() as session:
            row = session.get(ModelFile, model_id)
            assert row is not None and row.inspect_owner
            row.inspect_owner = "a-frozen-host|1|0"
            row.lease_expires_at = utcnow() - timedelta(seconds=1)
        before = len(broker_messages(data_dir))
        assert reconcile_inspections() == [model_id]
        assert len(broker_messages(data_dir)) == before + 1
        assert read(ModelFile, model_id).status == ModelStatus.PENDING
        assert inspect_model(model_id) == ModelStatus.READY  # the re-sent delivery
        release.set()
        worker.join(timeout=120)
        assert stalled == [None]
        assert len(calls) == 2


class TestDatasets:
    def test_dataset_inspection_claims_and_decides_once(self, data_dir: Path) -> None:
        dataset_id = stored_row(Dataset, npz_bytes(x=np.ones((3, 2))), "npz")
        assert inspect_dataset(dataset_id) == ModelStatus.READY
        assert inspect_dataset(dataset_id) is None
        row = read(Dataset, dataset_id)
        assert row.inspection["samples"] == 3 and row.inspect_owner is None

    def test_pending_dataset_is_resent_once_per_period(self, data_dir: Path) -> None:
        dataset_id = stored_row(Dataset, b'{"text": "a"}\n', "jsonl")
        with get_sessionmaker().begin() as session:  # its message was lost two minutes ago
            row = session.get(Dataset, dataset_id)
            assert row is not None
            row.updated_at = utcnow() - timedelta(minutes=2)
        before = len(broker_messages(data_dir))
        assert reconcile_inspections() == [dataset_id]
        assert reconcile_inspections() == []  # touched: not again until it is stale again
        assert len(broker_messages(data_dir)) == before + 1
        assert inspect_dataset(dataset_id) == ModelStatus.READY


class TestRejectionText:
    def test_an_unexpected_failure_rejects_with_a_fixed_message(
        self, data_dir: Path, digits_zip: bytes, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        model_id = stored_row(ModelFile, digits_zip, "archive")

        def leaking(*_args: Any) -> Any:
            raise RuntimeError("root:$6$secret-hash:19000:0:99999:7::: from /etc/shadow")

        monkeypatch.setattr(inspect_module, "_inspect", leaking)
        assert inspect_model(model_id) == ModelStatus.REJECTED
        assert read(ModelFile, model_id).rejection_reason == UNINSPECTABLE
