"""PostgreSQL refusing connections for 10 s in the middle of a job (issue 12, item 5): the
job's supervisor and its job process wait the outage out, and the job ends in exactly one
terminal state, as a cancel asked after the outage says."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager

import httpx
import pytest
import sqlalchemy as sa

from tests.faults.test_faults import FAST, artifacts_of, submit_slow
from tests.faults.test_faults import digits_zip as digits_zip  # noqa: F401 (fixture)
from tests.faults.test_faults import train_npz as train_npz  # noqa: F401 (fixture)
from tests.fixtures.helpers import upload_ready, wait_for_job, wait_until
from tests.fixtures.stack import Stack, running_stack

pytestmark = pytest.mark.e2e

OUTAGE_S = 10
TERMINAL = ("job succeeded", "job failed", "job cancelled")


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    with running_stack("scaleout", tmp_path_factory.mktemp("outage"), **FAST) as running:
        yield running


@contextmanager
def database_refusing(stack: Stack) -> Iterator[None]:
    """No new connections to the stack's database, and its open ones cut, until the end."""
    url = sa.make_url(stack.database_url)
    admin = sa.create_engine(url.set(database="postgres"), isolation_level="AUTOCOMMIT")
    name = url.database
    try:
        with admin.connect() as conn:
            conn.execute(sa.text(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS false'))
            conn.execute(
                sa.text(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = :n"
                ),
                {"n": name},
            )
        yield
    finally:
        with admin.connect() as conn:
            conn.execute(sa.text(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS true'))
        admin.dispose()


def training(client: httpx.Client, job_id: str) -> bool:
    return "distillation" in client.get(f"/v1/jobs/{job_id}").json()["phase"]


def start_then_outage(stack: Stack, digits_zip: bytes, train_npz: bytes, seconds: int) -> str:
    with stack.client() as client:
        model = upload_ready(client, digits_zip)["id"]
        job_id = submit_slow(client, model, train_npz, seconds)
        wait_until(lambda: training(client, job_id), 90, "the job to start training")
    with database_refusing(stack):
        time.sleep(OUTAGE_S)
    return job_id


def terminal_events(client: httpx.Client, job_id: str) -> list[str]:
    logs = client.get(f"/v1/jobs/{job_id}/logs").text
    return [line for line in logs.splitlines() if any(t in line for t in TERMINAL)]


class TestDatabaseOutage:
    def test_a_job_outlives_the_outage_and_succeeds_once(
        self,
        stack: Stack,
        digits_zip: bytes,  # noqa: F811
        train_npz: bytes,  # noqa: F811
    ) -> None:
        job_id = start_then_outage(stack, digits_zip, train_npz, 20)
        with stack.client() as client:
            job = wait_for_job(client, job_id, stack=stack, timeout=120)
            assert job["status"] == "succeeded", f"{job}\n{stack.logs()}"
            assert job["attempts"] == 1
            assert len(terminal_events(client, job_id)) == 1
            assert len(artifacts_of(stack, job_id)) == 1
            download = client.get(f"/v1/jobs/{job_id}/artifact")
            assert download.status_code == 200
            assert len(download.content) == job["artifact_bytes"]

    def test_a_cancel_after_the_outage_ends_it_cancelled_for_good(
        self,
        stack: Stack,
        digits_zip: bytes,  # noqa: F811
        train_npz: bytes,  # noqa: F811
    ) -> None:
        job_id = start_then_outage(stack, digits_zip, train_npz, 120)
        with stack.client() as client:
            asked = time.monotonic()
            assert client.post(f"/v1/jobs/{job_id}/cancel").status_code == 200
            job = wait_for_job(client, job_id, stack=stack, timeout=60)
            print(f"cancelled {time.monotonic() - asked:.1f} s after the request")
            assert job["status"] == "cancelled", f"{job}\n{stack.logs()}"
            time.sleep(8)  # past the reaper's and the re-sender's intervals: nothing re-runs it
            job = client.get(f"/v1/jobs/{job_id}").json()
            assert (job["status"], job["attempts"]) == ("cancelled", 1)
            assert len(terminal_events(client, job_id)) == 1
            assert artifacts_of(stack, job_id) == []
