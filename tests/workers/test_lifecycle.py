"""Claim, progress, cancel and reap, each a lifecycle call in a session, against a real
migrated database. No compression runs here: these rules are about the job row."""

from __future__ import annotations

import errno
import os
from pathlib import Path

import pytest

from app.db.models import EventLevel, JobPhase, JobStatus
from app.db.session import get_sessionmaker
from app.jobs import lifecycle
from app.jobs import repository as jobs_repository
from app.jobs.errors import (
    DiskFull,
    EngineError,
    InternalError,
    OutOfMemory,
    StorageFullError,
    job_error_from,
)
from app.settings import get_settings
from app.storage.base import StorageFull
from compressor.errors import UnsupportedModelError
from tests.workers.conftest import add_job, broker_messages, session
from workers import registry
from workers.execute import claim
from workers.maintenance import reap_stale_jobs, reconcile_queued

GONE_NODE = "cpu@gone-host"


def events(job_id: str) -> list[tuple[str, str]]:
    with session() as s:
        return [(e.level, e.message) for e in jobs_repository.events(s, job_id)]


def job_row(job_id: str) -> tuple[JobStatus, str, int, str | None]:
    with session() as s:
        job = jobs_repository.get(s, job_id)
        assert job is not None
        return job.status, job.phase, job.attempts, job.error


class TestClaim:
    def test_claim_runs_a_queued_job_once(self, model_id: str) -> None:
        job_id = add_job(model_id=model_id)
        owner = f"cpu@here|{os.getpid()}"
        attempt = claim(job_id, owner)
        assert attempt is not None
        assert (attempt.attempt, attempt.time_limit_s) == (
            1,
            get_settings().worker.job_soft_time_limit_s,
        )
        assert job_row(job_id) == (JobStatus.RUNNING, JobPhase.STARTING, 1, None)
        assert events(job_id) == [(EventLevel.INFO, "attempt 1 started on cpu@here")]
        # A duplicate delivery on the same node while this process (the runner) lives.
        assert claim(job_id, f"cpu@here|{os.getpid() + 1}") is None
        assert job_row(job_id)[2] == 1

    def test_a_job_whose_runner_died_on_this_node_is_claimed_again(self, model_id: str) -> None:
        dead_pid = 2**22 + 17  # above the kernel's pid_max default: no such process
        job_id = add_job(
            model_id=model_id, status=JobStatus.RUNNING, worker=f"cpu@here|{dead_pid}", attempts=1
        )
        assert claim(job_id, f"cpu@here|{os.getpid()}") is not None
        assert job_row(job_id)[2] == 2

    def test_attempts_exhausted_fails_the_job_instead(self, model_id: str) -> None:
        attempts = get_settings().worker.max_attempts
        job_id = add_job(model_id=model_id, attempts=attempts)
        assert claim(job_id, f"cpu@here|{os.getpid()}") is None
        status, phase, _, error = job_row(job_id)
        assert (status, phase) == (JobStatus.FAILED, JobPhase.FAILED)
        assert error == f"the job was interrupted {attempts} times; giving up"
        assert events(job_id)[-1] == (EventLevel.ERROR, error)

    def test_finished_jobs_are_not_claimed(self, model_id: str) -> None:
        job_id = add_job(model_id=model_id, status=JobStatus.SUCCEEDED)
        assert claim(job_id, f"cpu@here|{os.getpid()}") is None
        assert job_row(job_id)[0] == JobStatus.SUCCEEDED


class TestProgressAndCancel:
    def test_progress_logs_each_new_phase_once(self, model_id: str) -> None:
        owner = f"cpu@here|{os.getpid()}"
        job_id = add_job(model_id=model_id)
        claim(job_id, owner)
        for fraction in (0.1, 0.2):
            with get_sessionmaker().begin() as s:
                assert lifecycle.progress(
                    s, job_id=job_id, owner=owner, phase="step 1/1: pruning", fraction=fraction
                )
        messages = [m for _, m in events(job_id)]
        assert messages.count("step 1/1: pruning") == 1

    def test_cancel_stops_a_running_job_at_its_next_progress(self, model_id: str) -> None:
        owner = f"cpu@here|{os.getpid()}"
        job_id = add_job(model_id=model_id)
        claim(job_id, owner)
        with get_sessionmaker().begin() as s:
            assert lifecycle.cancel(s, job_id=job_id)
        assert job_row(job_id)[:2] == (JobStatus.RUNNING, JobPhase.CANCELLING)
        with get_sessionmaker().begin() as s:
            assert not lifecycle.progress(s, job_id=job_id, owner=owner, phase="x", fraction=0.5)
            assert not lifecycle.renew_lease(s, job_id=job_id, owner=owner)
        with get_sessionmaker().begin() as s:
            assert lifecycle.settle_cancelled(s, job_id=job_id, owner=owner)
        assert job_row(job_id)[:2] == (JobStatus.CANCELLED, JobPhase.CANCELLED)

    def test_cancel_of_a_queued_job_is_immediate_and_final(self, model_id: str) -> None:
        job_id = add_job(model_id=model_id)
        with get_sessionmaker().begin() as s:
            assert lifecycle.cancel(s, job_id=job_id)
        assert job_row(job_id)[0] == JobStatus.CANCELLED
        assert claim(job_id, f"cpu@here|{os.getpid()}") is None
        with get_sessionmaker().begin() as s:
            assert not lifecycle.cancel(s, job_id=job_id)

    def test_a_stale_owner_cannot_settle(self, model_id: str) -> None:
        job_id = add_job(model_id=model_id)
        claim(job_id, f"cpu@here|{os.getpid()}")
        with get_sessionmaker().begin() as s:
            assert not lifecycle.fail(
                s, job_id=job_id, owner="cpu@other|1", error=OutOfMemory(None)
            )
        assert job_row(job_id)[0] == JobStatus.RUNNING


class TestReaper:
    def test_a_job_of_a_lost_worker_is_requeued_and_resent(self, db: Path, model_id: str) -> None:
        job_id = add_job(
            model_id=model_id, status=JobStatus.RUNNING, worker=f"{GONE_NODE}|1", attempts=1
        )
        before = len(broker_messages(db))
        assert reap_stale_jobs() == [job_id]
        assert job_row(job_id)[:2] == (JobStatus.QUEUED, JobPhase.REQUEUED)
        assert events(job_id)[-1] == (EventLevel.WARNING, f"worker {GONE_NODE} lost; re-queued")
        assert len(broker_messages(db)) == before + 1
        assert reap_stale_jobs() == []  # only running jobs are reaped

    def test_a_job_of_a_live_worker_is_left_alone(self, model_id: str) -> None:
        registry.register(name="cpu@alive", queues=["cpu"], concurrency=1, threads=1)
        job_id = add_job(
            model_id=model_id, status=JobStatus.RUNNING, worker="cpu@alive|1", attempts=1
        )
        assert reap_stale_jobs() == []
        assert job_row(job_id)[0] == JobStatus.RUNNING
        registry.unregister("cpu@alive")
        assert reap_stale_jobs() == [job_id]

    def test_lost_too_often_fails_the_job(self, model_id: str) -> None:
        attempts = get_settings().worker.max_attempts
        job_id = add_job(
            model_id=model_id, status=JobStatus.RUNNING, worker=f"{GONE_NODE}|1", attempts=attempts
        )
        assert reap_stale_jobs() == []
        status, _, _, error = job_row(job_id)
        assert status == JobStatus.FAILED
        assert error == f"the worker running this job was lost {attempts} times; giving up"

    def test_reconcile_resends_old_queued_jobs_only(
        self, db: Path, model_id: str, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        fresh = add_job(model_id=model_id)
        assert reconcile_queued() == []
        monkeypatch.setattr(get_settings().worker, "reconcile_after_s", 0)
        before = len(broker_messages(db))
        assert reconcile_queued() == [fresh]
        assert len(broker_messages(db)) == before + 1


class TestJobErrors:
    """Every failure becomes one message for the user, decided in app/jobs/errors.py."""

    @pytest.mark.parametrize(
        ("exc", "kind", "says"),
        [
            (MemoryError(), OutOfMemory, "ran out of memory (the 2.0 GiB"),
            (RuntimeError("[enforce fail] can't allocate memory"), OutOfMemory, "out of memory"),
            (OSError(errno.ENOSPC, "no space"), DiskFull, "disk is full"),
            (StorageFull("the artifact store is full"), StorageFullError, "store is full"),
            (UnsupportedModelError("no", layer="fc1"), EngineError, "layer 'fc1': no"),
            (KeyError("x"), InternalError, "internal error (KeyError)"),
        ],
    )
    def test_mapping(self, exc: BaseException, kind: type, says: str) -> None:
        error = job_error_from(exc, memory_limit=2 * 1024**3)
        assert isinstance(error, kind)
        assert says in str(error)
