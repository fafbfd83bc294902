"""Each attempt holds a lease on its job that its supervisor renews; an expired lease is taken
over even when its worker still beats, and a cancel request is honoured by whoever takes a
job over: it is settled cancelled, never run again (issue 12, item 5)."""

from __future__ import annotations

import os
from datetime import timedelta
from pathlib import Path

import pytest

from app.db.models import JobPhase, JobStatus, utcnow
from app.jobs import repository as jobs_repository
from app.settings import get_settings
from tests.workers.conftest import add_job, broker_messages, session
from workers import registry
from workers.execute import claim
from workers.maintenance import reap_stale_jobs

LIVE_NODE = "cpu@alive"
GONE_NODE = "cpu@gone-host"


@pytest.fixture(autouse=True)
def live_node(db: Path) -> None:
    registry.register(name=LIVE_NODE, queues=["cpu"], concurrency=1, threads=1)


def row(job_id: str) -> tuple[JobStatus, str, int]:
    with session() as s:
        job = jobs_repository.get(s, job_id)
        assert job is not None
        return job.status, job.phase, job.attempts


def lease_left_s(job_id: str) -> float:
    with session() as s:
        job = jobs_repository.get(s, job_id)
        assert job is not None and job.lease_expires_at is not None
        return (job.lease_expires_at - utcnow()).total_seconds()


def running_job(model_id: str, *, worker: str, lease_s: float, **values: object) -> str:
    return add_job(
        model_id=model_id,
        status=JobStatus.RUNNING,
        worker=worker,
        attempts=1,
        lease_expires_at=utcnow() + timedelta(seconds=lease_s),
        **values,
    )


class TestLease:
    def test_claim_takes_a_lease_of_the_configured_length(self, model_id: str) -> None:
        job_id = add_job(model_id=model_id)
        assert claim(job_id, f"{LIVE_NODE}|{os.getpid()}") is not None
        lease = get_settings().worker.job_lease_s
        assert lease > get_settings().worker.cancel_poll_s
        assert lease - 5 < lease_left_s(job_id) <= lease

    def test_an_expired_lease_is_taken_over_though_its_worker_beats(
        self, db: Path, model_id: str
    ) -> None:
        job_id = running_job(model_id, worker=f"{LIVE_NODE}|1", lease_s=-1)
        before = len(broker_messages(db))
        assert reap_stale_jobs() == [job_id]
        assert row(job_id) == (JobStatus.QUEUED, JobPhase.REQUEUED, 1)
        assert len(broker_messages(db)) == before + 1

    def test_a_live_lease_of_a_live_worker_is_left_alone(self, model_id: str) -> None:
        job_id = running_job(model_id, worker=f"{LIVE_NODE}|1", lease_s=60)
        assert reap_stale_jobs() == []
        assert row(job_id)[0] == JobStatus.RUNNING

    def test_a_duplicate_delivery_takes_over_an_expired_lease(self, model_id: str) -> None:
        """Its runner's process is alive on this node, but has stopped renewing."""
        job_id = running_job(model_id, worker=f"{LIVE_NODE}|{os.getpid()}", lease_s=-1)
        assert claim(job_id, f"{LIVE_NODE}|{os.getpid() + 1}") is not None
        assert row(job_id)[::2] == (JobStatus.RUNNING, 2)


class TestCancelHonoured:
    @pytest.mark.parametrize(
        ("worker", "lease_s"),
        [(f"{GONE_NODE}|1", 60), (f"{LIVE_NODE}|1", -1)],
        ids=["worker-lost", "lease-expired"],
    )
    def test_the_reaper_settles_a_flagged_job_cancelled(
        self, db: Path, model_id: str, worker: str, lease_s: float
    ) -> None:
        job_id = running_job(model_id, worker=worker, lease_s=lease_s, cancel_requested=True)
        before = len(broker_messages(db))
        assert reap_stale_jobs() == []
        assert row(job_id) == (JobStatus.CANCELLED, JobPhase.CANCELLED, 1)
        assert len(broker_messages(db)) == before

    def test_a_flagged_job_is_settled_cancelled_at_claim_not_run(self, model_id: str) -> None:
        dead_runner = f"{LIVE_NODE}|{2**22 + 17}"
        job_id = running_job(model_id, worker=dead_runner, lease_s=60, cancel_requested=True)
        assert claim(job_id, f"{LIVE_NODE}|{os.getpid()}") is None
        assert row(job_id) == (JobStatus.CANCELLED, JobPhase.CANCELLED, 1)
