"""What a queued or running job reads cannot be deleted: its datasets and its uploaded student.

Job submission records them in job_inputs under RESTRICT keys. The delete's own check answers
409; a delete that races a submission past that check fails on the key and is answered 409 too,
and a submission that races a delete is refused with 409 instead of queuing an orphan. Rows of
finished jobs are history and do not block a delete.

The races run in-process against the live stack's own database, two sessions at once.
"""

from __future__ import annotations

import json
import threading
import zipfile
from collections.abc import Callable, Iterator
from io import BytesIO
from typing import Any

import numpy as np
import pytest
from sqlalchemy.orm import Session

from app import errors
from app.broker import get_celery
from app.datasets import service as datasets_service
from app.db.session import get_engine, get_sessionmaker
from app.jobs import service as jobs_service
from app.jobs.schemas import JobCreate
from app.settings import get_settings
from app.storage import get_storage
from tests.fixtures.helpers import (
    assert_problem,
    npz_bytes,
    row_count,
    submit_job,
    upload_dataset_ready,
    upload_ready,
)
from tests.fixtures.stack import Stack

INT8 = [{"technique": "quantization", "scheme": "int8_dynamic"}]


def minilm_batch() -> bytes:
    ids = np.ones((4, 16), dtype=np.int64)
    return npz_bytes(input_ids=ids, attention_mask=ids)


def mlp_zip(seed: int) -> bytes:
    """An untrained digits MLP (architecture.json + model.safetensors): a trainable student."""
    import torch
    from safetensors.torch import save

    from compressor.zoo import ArchitectureSpec

    spec = {"family": "mlp", "args": {"in_features": 64, "hidden": [32], "num_classes": 10}}
    torch.manual_seed(seed)
    model = ArchitectureSpec.model_validate(spec).build()
    buf = BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("architecture.json", json.dumps(spec))
        zf.writestr("model.safetensors", save(dict(model.state_dict())))
    return buf.getvalue()


class TestStudentInUse:
    def test_student_of_a_queued_job_cannot_be_deleted(self, api: Stack) -> None:
        with api.client() as client:
            teacher = upload_ready(client, mlp_zip(0), "teacher.zip")
            student = upload_ready(client, mlp_zip(1), "student.zip")
            train = upload_dataset_ready(
                client,
                npz_bytes(
                    input=np.ones((8, 64), np.float32), labels=np.arange(8, dtype=np.int64) % 10
                ),
            )
            step = {"technique": "distillation", "student": "uploaded",
                    "student_model_id": student["id"], "epochs": 1}  # fmt: skip
            job_id = submit_job(client, teacher["id"], [step], data={"train": train["id"]})
            refused = client.delete(f"/v1/models/{student['id']}")
            assert "queued or running job" in assert_problem(refused, 409)["detail"]
            assert client.get(f"/v1/models/{student['id']}").status_code == 200
            client.post(f"/v1/jobs/{job_id}/cancel")
            # A finished job's record of its inputs is history; it does not block the delete.
            assert client.delete(f"/v1/models/{student['id']}").status_code == 204
            assert client.delete(f"/v1/datasets/{train['id']}").status_code == 204
            assert client.get(f"/v1/jobs/{job_id}").json()["status"] == "cancelled"


@pytest.fixture
def in_process(api: Stack, monkeypatch: pytest.MonkeyPatch) -> Iterator[Stack]:
    """This process's app settings point at the live stack's database, storage and broker."""
    for name, value in api.env.items():
        if name.startswith("MODELPRESS_"):
            monkeypatch.setenv(name, value)
    caches = (get_settings, get_engine, get_sessionmaker, get_storage, get_celery)
    for cached in caches:
        cached.cache_clear()
    yield api
    get_engine().dispose()
    for cached in caches:
        cached.cache_clear()


def race(first: Callable[[Session], Any], second: Callable[[Session], Any]) -> BaseException | None:
    """``first`` runs in an open transaction; ``second`` starts in another before ``first``
    commits. Returns what ``second`` raised (or None)."""
    outcome: list[BaseException | None] = []

    def run_second() -> None:
        try:
            with get_sessionmaker().begin() as session:
                second(session)
        except BaseException as exc:
            outcome.append(exc)
        else:
            outcome.append(None)

    with get_sessionmaker().begin() as session:
        first(session)
        other = threading.Thread(target=run_second)
        other.start()
        other.join(timeout=1.5)  # it waits on our uncommitted rows; let it get there
    other.join(timeout=60)
    assert outcome, "the second transaction never finished"
    return outcome[0]


class TestRaces:
    def test_delete_racing_a_submission_is_refused(self, in_process: Stack, model_id: str) -> None:
        with in_process.client() as client:
            dataset = upload_dataset_ready(client, minilm_batch())
        request = JobCreate.model_validate(
            {
                "model_id": model_id,
                "recipe": {"steps": INT8},
                "data": {"calibration": dataset["id"]},
            }
        )
        jobs_before = row_count(in_process, "jobs")
        raised = race(
            lambda s: jobs_service.submit_job(s, request=request),
            lambda s: datasets_service.delete_dataset(s, dataset_id=dataset["id"]),
        )
        assert isinstance(raised, errors.Conflict), raised
        with in_process.client() as client:
            assert client.get(f"/v1/datasets/{dataset['id']}").status_code == 200
        assert row_count(in_process, "jobs") == jobs_before + 1

    def test_submission_racing_a_delete_is_refused(self, in_process: Stack, model_id: str) -> None:
        with in_process.client() as client:
            dataset = upload_dataset_ready(client, minilm_batch())
        request = JobCreate.model_validate(
            {
                "model_id": model_id,
                "recipe": {"steps": INT8},
                "data": {"calibration": dataset["id"]},
            }
        )
        jobs_before = row_count(in_process, "jobs")
        raised = race(
            lambda s: datasets_service.delete_dataset(s, dataset_id=dataset["id"]),
            lambda s: jobs_service.submit_job(s, request=request),
        )
        assert isinstance(raised, (errors.Conflict, errors.DatasetNotFound)), raised
        assert row_count(in_process, "jobs") == jobs_before
        with in_process.client() as client:
            assert client.get(f"/v1/datasets/{dataset['id']}").status_code == 404
