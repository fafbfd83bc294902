"""Stored files follow the request's transaction, in both directions.

In-process, through the real request dependency (``get_session``) and the real services, against
a migrated database (SQLite, and PostgreSQL where configured) and a real store: LocalStorage, or
S3Storage on moto's S3 server as tests/test_storage_s3.py runs it. A commit is made to fail for
real: the request's unit of work also carries a row whose primary key is already taken, so the
database refuses the flush that ``commit()`` runs.
"""

from __future__ import annotations

import contextlib
import io
import os
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import exc as sa_exc
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.datasets import service as datasets
from app.db.models import Dataset, ModelFile
from app.db.session import get_engine, get_session, get_sessionmaker
from app.models_upload import service as models
from app.settings import get_settings
from app.storage import get_storage
from tests.fixtures.helpers import npz_bytes
from tests.fixtures.stack import _postgres_database, unavailable
from tests.test_storage_s3 import CREDENTIALS, bucket, keys_in, moto_url  # noqa: F401 (fixtures)

_CACHED = (get_settings, get_engine, get_sessionmaker, get_storage)


def _clear_caches() -> None:
    for cached in _CACHED:
        cached.cache_clear()


@pytest.fixture(params=["sqlite", "postgresql", "sqlite-s3"])
def data_dir(
    request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Path]:
    """A fresh data folder, migrated database and store, configured as the service reads them."""
    for name in list(os.environ):
        if name.startswith("MODELPRESS_") and not name.startswith("MODELPRESS_TEST"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("MODELPRESS_DATA_DIR", str(tmp_path / "var"))
    if request.param.endswith("-s3"):
        for name, value in CREDENTIALS.items():
            monkeypatch.setenv(name, value)
        monkeypatch.setenv("MODELPRESS_STORAGE_BACKEND", "s3")
        monkeypatch.setenv("MODELPRESS_S3_ENDPOINT_URL", request.getfixturevalue("moto_url"))
        monkeypatch.setenv("MODELPRESS_S3_BUCKET", request.getfixturevalue("bucket"))
    with _database(request.param.removesuffix("-s3")) as url:
        if url is not None:
            monkeypatch.setenv("MODELPRESS_DATABASE_URL", url)
        _clear_caches()
        from app.cli import migrate

        migrate()
        try:
            yield tmp_path / "var"
        finally:
            get_engine().dispose()
            _clear_caches()


@contextlib.contextmanager
def _database(kind: str) -> Iterator[str | None]:
    if kind == "sqlite":
        yield None
        return
    server = os.environ.get("MODELPRESS_TEST_DATABASE_URL")
    if not server:
        unavailable("MODELPRESS_TEST_DATABASE_URL is not set")
    assert server
    yield from _postgres_database(server)


def in_request(work: Callable[[Session], object]) -> None:
    """Run ``work`` as one request does: the dependency commits after it, or rolls back."""
    dependency = get_session()
    session = next(dependency)
    try:
        work(session)
    except BaseException as exc:
        dependency.throw(exc)
    next(dependency, None)


def taken_key(session: Session, taken: Dataset) -> None:
    """Make this transaction's commit fail: a second row under a primary key already in use."""
    session.add(
        Dataset(
            id=taken.id,
            filename="duplicate",
            format="npz",
            size_bytes=1,
            sha256="0" * 64,
            inspection={},
            storage_key="datasets/duplicate/upload",
        )
    )


def stored(data_dir: Path) -> list[str]:
    settings = get_settings().storage
    if settings.storage_backend == "s3":
        assert settings.s3_endpoint_url and settings.s3_bucket
        return keys_in(settings.s3_endpoint_url, settings.s3_bucket)
    root = data_dir / "storage"
    return sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file())


def rows(table: type[ModelFile] | type[Dataset]) -> set[str]:
    with get_sessionmaker()() as session:
        return set(session.scalars(select(table.id)))


def model_zip() -> bytes:
    # Passes the cheap checks at the door (an archive naming an .onnx file); nothing inspects it.
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("net/model.onnx", os.urandom(2048))
    return buf.getvalue()


def dataset_npz() -> bytes:
    return npz_bytes(x=np.random.default_rng(0).standard_normal((8, 4)).astype(np.float32))


def upload_dataset(session: Session, content: bytes) -> Dataset:
    return datasets.upload_dataset(session, stream=io.BytesIO(content), filename="d.npz")


def committed_dataset() -> Dataset:
    made: list[Dataset] = []
    in_request(lambda s: made.append(upload_dataset(s, dataset_npz())))
    return made[0]


class TestUploadCommitFails:
    def test_model_file_is_removed(self, data_dir: Path) -> None:
        taken = committed_dataset()
        before = stored(data_dir)
        seen: list[str] = []

        def work(session: Session) -> None:
            model = models.upload_model(session, stream=io.BytesIO(model_zip()), filename="m.zip")
            seen.extend(stored(data_dir))  # the file really was stored before the commit
            assert model.storage_key in seen
            taken_key(session, taken)

        with pytest.raises(sa_exc.IntegrityError):
            in_request(work)
        assert len(seen) == len(before) + 1
        assert stored(data_dir) == before
        assert rows(ModelFile) == set()
        assert not list((data_dir / "tmp").rglob("*.bin"))

    def test_dataset_file_is_removed(self, data_dir: Path) -> None:
        taken = committed_dataset()
        before = stored(data_dir)
        made: list[Dataset] = []

        def work(session: Session) -> None:
            made.append(upload_dataset(session, dataset_npz()))
            assert made[0].storage_key in stored(data_dir)
            taken_key(session, taken)

        with pytest.raises(sa_exc.IntegrityError):
            in_request(work)
        assert stored(data_dir) == before
        assert rows(Dataset) == {taken.id}

    def test_an_error_after_the_upload_also_removes_it(self, data_dir: Path) -> None:
        def work(session: Session) -> None:
            upload_dataset(session, dataset_npz())
            raise RuntimeError("the request failed after storing")

        with pytest.raises(RuntimeError):
            in_request(work)
        assert stored(data_dir) == []
        assert rows(Dataset) == set()

    def test_a_committed_upload_keeps_its_file(self, data_dir: Path) -> None:
        model: list[ModelFile] = []
        in_request(
            lambda s: model.append(
                models.upload_model(s, stream=io.BytesIO(model_zip()), filename="m.zip")
            )
        )
        assert stored(data_dir) == [model[0].storage_key]
        assert rows(ModelFile) == {model[0].id}
        assert get_storage().size(model[0].storage_key) == model[0].size_bytes


class TestDelete:
    def test_failed_commit_keeps_dataset_file_and_row(self, data_dir: Path) -> None:
        doomed, taken = committed_dataset(), committed_dataset()

        def work(session: Session) -> None:
            datasets.delete_dataset(session, dataset_id=doomed.id)
            taken_key(session, taken)

        with pytest.raises(sa_exc.IntegrityError):
            in_request(work)
        assert doomed.storage_key in stored(data_dir)
        assert rows(Dataset) == {doomed.id, taken.id}

    def test_failed_commit_keeps_model_file_and_row(self, data_dir: Path) -> None:
        taken = committed_dataset()
        model: list[ModelFile] = []
        in_request(
            lambda s: model.append(
                models.upload_model(s, stream=io.BytesIO(model_zip()), filename="m.zip")
            )
        )

        def work(session: Session) -> None:
            models.delete_model(session, model_id=model[0].id)
            assert model[0].storage_key in stored(data_dir)  # nothing removed before the commit
            taken_key(session, taken)

        with pytest.raises(sa_exc.IntegrityError):
            in_request(work)
        assert model[0].storage_key in stored(data_dir)
        assert rows(ModelFile) == {model[0].id}

    def test_committed_delete_removes_file_and_row(self, data_dir: Path) -> None:
        kept, doomed = committed_dataset(), committed_dataset()
        model: list[ModelFile] = []
        in_request(
            lambda s: model.append(
                models.upload_model(s, stream=io.BytesIO(model_zip()), filename="m.zip")
            )
        )
        in_request(lambda s: datasets.delete_dataset(s, dataset_id=doomed.id))
        in_request(lambda s: models.delete_model(s, model_id=model[0].id))
        assert stored(data_dir) == [kept.storage_key]
        assert rows(Dataset) == {kept.id}
        assert rows(ModelFile) == set()
