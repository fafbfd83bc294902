"""In-process worker tests: the lifecycle, the reaper and execute_job against a fresh,
migrated SQLite database (one per test) with local storage and the filesystem broker."""

from __future__ import annotations

import io
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy.orm import Session

from app.broker import get_celery
from app.db.models import Job, JobStatus, new_id
from app.db.session import get_engine, get_sessionmaker
from app.settings import get_settings
from app.storage import get_storage


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
    job = Job(
        id=new_id(),
        model_id=model_id,
        status=status,
        queue="cpu",
        recipe={"steps": [{"technique": "quantization", "scheme": "int8_dynamic"}]},
        target={},
        data={},
        **values,
    )
    with get_sessionmaker().begin() as s:
        s.add(job)
    return job.id


def zip_folder(folder: Path, names: tuple[str, ...]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name in names:
            zf.write(folder / name, name)
    return buf.getvalue()
