"""In-process worker tests: the lifecycle, the reaper and execute_job against a fresh,
migrated SQLite database (one per test) with local storage and the filesystem broker."""

from __future__ import annotations

import io
import os
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy.orm import Session

from app.broker import get_celery
from app.db.models import Job, JobStatus, ModelFile, ModelStatus, new_id
from app.db.session import get_engine, get_sessionmaker
from app.settings import get_settings
from app.storage import get_storage
from scripts.train_digits import train_and_save
from tests.fixtures.stack import _postgres_database, unavailable
from workers.inspect import inspect_model


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """An empty database on each backend: a SQLite file, and a fresh PostgreSQL database."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'modelpress.db'}"
        return
    server = os.environ.get("MODELPRESS_TEST_DATABASE_URL")
    if not server:
        unavailable("MODELPRESS_TEST_DATABASE_URL is not set")
    assert server is not None
    yield from _postgres_database(server)


def _clear_caches() -> None:
    for cached in (get_settings, get_engine, get_sessionmaker, get_storage, get_celery):
        cached.cache_clear()


@pytest.fixture
def db(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A fresh data folder whose database has every migration applied."""
    for name in ("MODELPRESS_DATABASE_URL", "MODELPRESS_BROKER_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("MODELPRESS_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("MODELPRESS_STORAGE_BACKEND", "local")
    # Jobs run in this process start cold: a fork server started for the next job would
    # hold this test's settings, and most tests here run one job (tests/workers/test_execute.py
    # tests the warm start).
    monkeypatch.setenv("MODELPRESS_WARM_JOB_PROCESSES", "false")
    _clear_caches()
    from app.cli import migrate

    migrate()
    yield tmp_path
    get_engine().dispose()
    _clear_caches()


def session() -> Session:
    return get_sessionmaker()()


def broker_messages(data_dir: Path) -> list[Path]:
    return sorted((data_dir / "broker" / "queue").glob("*.msg"))


def add_job(*, model_id: str, status: JobStatus = JobStatus.QUEUED, **values: object) -> str:
    """A job row as a test needs it, written straight to the table (not a transition)."""
    defaults: dict[str, object] = {
        "queue": "cpu",
        "recipe": {"steps": [{"technique": "quantization", "scheme": "int8_dynamic"}]},
        "target": {},
        "data": {},
    }
    job = Job(id=new_id(), model_id=model_id, status=status, **{**defaults, **values})
    with get_sessionmaker().begin() as s:
        s.add(job)
    return job.id


def zip_folder(folder: Path, names: tuple[str, ...]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name in names:
            zf.write(folder / name, name)
    return buf.getvalue()


@pytest.fixture
def model_id(db: Path) -> str:
    """A ready model row, for jobs that never run (their rules are about the row)."""
    model = ModelFile(
        id=new_id(),
        filename="m.zip",
        format="architecture",
        status=ModelStatus.READY,
        size_bytes=1,
        sha256="0" * 64,
        storage_key="models/none",
        inspection={},
    )
    with get_sessionmaker().begin() as s:
        s.add(model)
    return model.id


@pytest.fixture(scope="module")
def digits_zip(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    folder = tmp_path_factory.mktemp("mlp")
    train_and_save("mlp", folder, epochs=3)
    return zip_folder(folder, ("architecture.json", "model.safetensors"))


@pytest.fixture
def digits_model(db: Path, digits_zip: bytes) -> str:
    """The digits upload, stored and inspected by the worker's own inspection."""
    model = ModelFile(
        id=new_id(),
        filename="digits.zip",
        format="zip",
        status=ModelStatus.PENDING,
        size_bytes=len(digits_zip),
        sha256="0" * 64,
        storage_key="",
        inspection={},
    )
    model.storage_key = f"models/{model.id}/upload"
    upload = db / "digits.zip"
    upload.write_bytes(digits_zip)
    get_storage().put_file(model.storage_key, upload)
    with get_sessionmaker().begin() as s:
        s.add(model)
    assert inspect_model(model.id) == ModelStatus.READY
    return model.id
