"""Fair sharing between tenants, on the job rows (SQLite, filesystem broker): a tenant's jobs
past its running-job share are held in the database, not sent; a job that ends sends the
tenant's next held job (priority, then age); other tenants are never held by it."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from app.auth import keys
from app.db.models import Job, JobStatus, new_id
from app.db.session import get_sessionmaker
from app.jobs import lifecycle, shares
from app.jobs import repository as jobs_repository
from app.jobs.errors import JobError
from app.settings import get_settings
from tests.workers.conftest import broker_messages, session
from workers.maintenance import dispatch_held_jobs, reconcile_queued

OWNER = f"cpu@here|{os.getpid()}"


def submit(
    model_id: str, tenant: str | None, *, priority: int = 5, parent: str | None = None
) -> str:
    job = Job(
        id=new_id(),
        tenant=tenant,
        model_id=model_id,
        parent_id=parent,
        queue="cpu",
        priority=priority,
        recipe={"steps": [{"technique": "quantization", "scheme": "int8_dynamic"}]},
        target={},
        data={},
    )
    with get_sessionmaker().begin() as s:
        lifecycle.submit(s, job=job)
    return job.id


def set_share(tenant: str, running_jobs: int | None) -> None:
    with get_sessionmaker().begin() as s:
        shares.set_share(s, tenant, running_jobs)


def held(job_id: str) -> str | None:
    with session() as s:
        job = jobs_repository.get(s, job_id)
        assert job is not None
        return job.waiting_reason


def sent_ids(data_dir: Path) -> set[str]:
    """Job ids on the broker (its files are named by urgency first, so no order is read)."""
    sent = [next(i for i in JOB_IDS if i in p.read_text()) for p in broker_messages(data_dir)]
    assert len(sent) == len(set(sent)), "a job was sent twice"
    return set(sent)


JOB_IDS: list[str] = []  # filled per test: the ids sent_ids looks for


def run_and_end(job_id: str) -> None:
    """Claim the job (a worker runs it), then fail it: a terminal state, like any other."""
    with get_sessionmaker().begin() as s:
        assert lifecycle.claim(s, job_id=job_id, owner=OWNER) is not None
    with get_sessionmaker().begin() as s:
        assert lifecycle.fail(s, job_id=job_id, owner=OWNER, error=JobError("done"))


@pytest.fixture(autouse=True)
def _fresh_ids() -> None:
    JOB_IDS.clear()


def test_jobs_past_the_share_wait_in_the_database(db: Path, model_id: str) -> None:
    set_share("alpha", 2)
    ids = [submit(model_id, "alpha") for _ in range(4)]
    JOB_IDS.extend(ids)
    assert sent_ids(db) == set(ids[:2])
    assert [held(i) for i in ids[:2]] == [None, None]
    for job_id in ids[2:]:
        assert "share of 2 running jobs" in (held(job_id) or "")
    with session() as s:
        job = jobs_repository.get(s, ids[3])
        assert job is not None and job.status == JobStatus.QUEUED
        assert "share of 2" in jobs_repository.events(s, ids[3])[-1].message


def test_the_default_share_comes_from_the_setting(
    db: Path,
    model_id: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("MODELPRESS_TENANT_RUNNING_JOBS_DEFAULT", "1")
    get_settings.cache_clear()
    first, second = submit(model_id, "alpha"), submit(model_id, "alpha")
    assert (held(first), held(second) is not None) == (None, True)
    set_share("beta", None)  # the operator's "no limit" beats the default
    assert [held(submit(model_id, "beta")) for _ in range(3)] == [None] * 3
    assert held(submit(model_id, None)) is None  # authentication off: no tenant, never held


def test_an_ending_job_sends_the_next_by_priority_then_age(db: Path, model_id: str) -> None:
    set_share("alpha", 1)
    running = submit(model_id, "alpha")
    low = submit(model_id, "alpha", priority=2)
    urgent_old = submit(model_id, "alpha", priority=8)
    urgent_new = submit(model_id, "alpha", priority=8)
    JOB_IDS.extend([running, low, urgent_old, urgent_new])
    assert sent_ids(db) == {running}
    run_and_end(running)
    assert sent_ids(db) == {running, urgent_old}
    run_and_end(urgent_old)
    assert sent_ids(db) == {running, urgent_old, urgent_new}
    run_and_end(urgent_new)
    assert sent_ids(db) == {running, urgent_old, urgent_new, low}
    assert held(low) is None


def test_a_cancelled_job_releases_its_slot_and_a_held_one_does_not_take_it(
    db: Path,
    model_id: str,
) -> None:
    set_share("alpha", 1)
    first, second, third = (submit(model_id, "alpha") for _ in range(3))
    JOB_IDS.extend([first, second, third])
    with get_sessionmaker().begin() as s:
        assert lifecycle.cancel(s, job_id=third)  # held: frees nothing, sends nothing
    assert sent_ids(db) == {first}
    with get_sessionmaker().begin() as s:
        assert lifecycle.cancel(s, job_id=first)  # sent, not yet running
    assert sent_ids(db) == {first, second}


def test_idle_capacity_goes_to_whoever_has_work(db: Path, model_id: str) -> None:
    set_share("alpha", 1)
    set_share("beta", 2)
    alpha = [submit(model_id, "alpha") for _ in range(5)]
    beta = [submit(model_id, "beta") for _ in range(2)]
    JOB_IDS.extend(alpha + beta)
    # alpha's four held jobs hold nobody else back: beta's go straight to the broker.
    assert sent_ids(db) == {alpha[0], *beta}
    for job_id in beta:
        run_and_end(job_id)  # beta's slots free up: alpha still gets only its one
    assert sent_ids(db) == {alpha[0], *beta}
    set_share("alpha", 3)  # the operator raises it; the workers' sweep sends two more
    assert dispatch_held_jobs() == alpha[1:3]
    assert sent_ids(db) == {alpha[0], *beta, *alpha[1:3]}


def test_two_workers_never_send_the_same_held_job(
    db: Path,
    model_id: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    set_share("alpha", 2)
    ids = [submit(model_id, "alpha") for _ in range(3)]
    JOB_IDS.extend(ids)
    with session() as s:  # a second worker reads the held job (and one free slot) ...
        stale = list(jobs_repository.held(s, "alpha", limit=None))
        s.expunge_all()
    run_and_end(ids[0])  # ... while the first sends it
    assert sent_ids(db) == set(ids)
    monkeypatch.setattr(jobs_repository, "held", lambda *_a, **_k: stale)
    monkeypatch.setattr(shares, "room", lambda *_a, **_k: 1)
    with get_sessionmaker().begin() as s:
        assert lifecycle.dispatch_held(s, tenant="alpha") == []  # its conditional update lost
    assert sent_ids(db) == set(ids)


def test_held_jobs_are_not_resent_by_the_reconciler(
    db: Path,
    model_id: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    set_share("alpha", 1)
    sent, waiting = submit(model_id, "alpha"), submit(model_id, "alpha")
    monkeypatch.setenv("MODELPRESS_RECONCILE_AFTER_S", "0.001")
    get_settings.cache_clear()
    assert reconcile_queued() == [sent]
    assert held(waiting) is not None


def test_a_goal_job_runs_its_held_candidates_itself(db: Path, model_id: str) -> None:
    """The goal job takes the tenant's one slot; its candidates are held, and its own process
    claims them (the claim clears the hold), so the search never waits on itself."""
    set_share("alpha", 1)
    goal = submit(model_id, "alpha")
    with get_sessionmaker().begin() as s:
        assert lifecycle.claim(s, job_id=goal, owner=OWNER) is not None
    candidate = submit(model_id, "alpha", parent=goal)
    assert held(candidate) is not None
    with get_sessionmaker().begin() as s:
        assert lifecycle.claim(s, job_id=candidate, owner=OWNER) is not None
        assert jobs_repository.holding_share(s, "alpha") == 2  # both count as running work
    assert held(candidate) is None
    another = submit(model_id, "alpha")
    assert held(another) is not None


def test_operators_set_shares_over_the_api(db: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MODELPRESS_AUTH_REQUIRED", "true")
    monkeypatch.setenv("MODELPRESS_TENANT_RUNNING_JOBS_DEFAULT", "4")
    get_settings.cache_clear()
    from app.main import create_app

    with get_sessionmaker().begin() as s:
        _, admin = keys.create_key(s, tenant="ops", admin=True)
        _, user = keys.create_key(s, tenant="alpha", admin=False)
    client = TestClient(create_app())
    path = "/v1/tenants/alpha/share"
    as_user = {"Authorization": f"Bearer {user}"}
    as_admin = {"Authorization": f"Bearer {admin}"}
    assert client.put(path, json={"running_jobs": 9}, headers=as_user).status_code == 403
    got = client.get(path, headers=as_admin).json()
    assert got == {"tenant": "alpha", "running_jobs": 4, "source": "default"}
    put = client.put(path, json={"running_jobs": 2}, headers=as_admin)
    assert put.json() == {"tenant": "alpha", "running_jobs": 2, "source": "operator"}
    assert client.put(path, json={"running_jobs": 0}, headers=as_admin).status_code == 422
    with session() as s:
        assert shares.share_of(s, "alpha") == 2
