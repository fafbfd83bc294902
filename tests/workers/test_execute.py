"""execute_job in this process, against a migrated database: the real job process compresses
the tiny digits model, or is stopped by its time limit."""

from __future__ import annotations

import zipfile
from pathlib import Path

import pytest

from app.db.models import EventLevel, JobPhase, JobStatus, ModelFile, ModelStatus, new_id
from app.db.session import get_sessionmaker
from app.jobs import repository as jobs_repository
from app.jobs.artifacts import all_keys
from app.storage import get_storage
from scripts.train_digits import train_and_save
from tests.workers.conftest import add_job, session, zip_folder
from workers.execute import execute_job
from workers.inspect import inspect_model


@pytest.fixture(scope="module")
def digits_zip(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    folder = tmp_path_factory.mktemp("mlp")
    train_and_save("mlp", folder, epochs=3)
    return zip_folder(folder, ("architecture.json", "model.safetensors"))


@pytest.fixture
def model_id(db: Path, digits_zip: bytes) -> str:
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


def test_execute_job_compresses_and_settles_once(db: Path, model_id: str) -> None:
    job_id = add_job(model_id=model_id)
    execute_job(job_id, node="cpu@test")
    with session() as s:
        job = jobs_repository.get(s, job_id)
        assert job is not None
        assert (job.status, job.phase, job.error) == (JobStatus.SUCCEEDED, JobPhase.DONE, None)
        assert job.attempts == 1 and job.progress == 1.0
        assert job.report is not None and job.report["artifact"]["bytes"] == job.artifact_bytes
        messages = [(e.level, e.message) for e in jobs_repository.events(s, job_id)]
        key = job.artifact_key
    assert key is not None and get_storage().exists(key)
    local = db / "artifact"
    get_storage().fetch_to(key, local)
    assert local.stat().st_size == job.artifact_bytes
    if zipfile.is_zipfile(local):
        assert zipfile.ZipFile(local).namelist()
    assert messages[0] == (EventLevel.INFO, "attempt 1 started on cpu@test")
    assert messages[-1] == (EventLevel.INFO, "job succeeded")
    assert (EventLevel.INFO, JobPhase.FETCHING_MODEL) in messages
    # A second delivery of the same message does nothing.
    execute_job(job_id, node="cpu@test")
    with session() as s:
        again = jobs_repository.get(s, job_id)
        assert again is not None and again.attempts == 1
        assert len(jobs_repository.events(s, job_id)) == len(messages)


def test_time_limit_stops_the_job_process(db: Path, model_id: str) -> None:
    job_id = add_job(model_id=model_id, time_limit_s=1)
    execute_job(job_id, node="cpu@test")
    with session() as s:
        job = jobs_repository.get(s, job_id)
        assert job is not None
        assert job.status == JobStatus.FAILED
        assert job.error == "the job exceeded its time limit of 1 s and was stopped"
    assert not any(get_storage().exists(k) for k in all_keys(job_id))
