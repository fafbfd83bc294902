"""Fair sharing between tenants on PostgreSQL + Redis with real workers: tenant A floods the
pool, tenant B submits a little later, and B's jobs start within about one job-length instead of
after A's flood; A never runs more than its share at once, though a second worker is free.

A's flood is cancelled once B is done: what is measured is that B did not queue behind it."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.fixtures.helpers import digits_upload, submit_job, upload_ready, wait_until
from tests.fixtures.stack import Stack

pytestmark = pytest.mark.e2e
STEPS = [{"technique": "quantization", "scheme": "fp16"}]  # the quickest digits job
A_JOBS, B_JOBS, A_SHARE = 20, 3, 1
ENDED = ("succeeded", "failed", "cancelled")


@pytest.fixture(scope="module")
def two_workers(scaleout_stack: Stack) -> Iterator[Stack]:
    """Two workers of one job each: A's share of one leaves the second to whoever has work."""
    scaleout_stack.start_worker("worker-2", queues="cpu")
    yield scaleout_stack
    scaleout_stack.stop("worker-2")


def _at(value: str | None) -> datetime:
    return datetime.fromisoformat(value) if value else datetime.now(UTC)


def _jobs(client: httpx.Client, ids: list[str]) -> list[dict[str, Any]]:
    return [client.get(f"/v1/jobs/{job_id}").json() for job_id in ids]


def _most_at_once(jobs: list[dict[str, Any]]) -> int:
    """The most of these jobs running at the same moment, from their start and end times."""
    ran = [j for j in jobs if j["started_at"]]
    edges = sorted(
        [(_at(j["started_at"]), 1) for j in ran] + [(_at(j["finished_at"]), -1) for j in ran]
    )  # at a tie the end (-1) sorts first: a job sent when another ended does not overlap it
    running = most = 0
    for _, step in edges:
        running += step
        most = max(most, running)
    return most


def _all_ended(client: httpx.Client, ids: list[str], *, allowed: tuple[str, ...]) -> bool:
    time.sleep(1)  # one request per job a second: the machine runs the jobs too
    jobs = _jobs(client, ids)
    wrong = [
        (j["id"], j["status"], j["error"]) for j in jobs if j["status"] in set(ENDED) - set(allowed)
    ]
    assert not wrong, wrong
    return all(j["status"] in allowed for j in jobs)


def test_a_later_tenant_starts_within_a_job_length(two_workers: Stack, tmp_path: Path) -> None:
    stack = two_workers
    with stack.client() as admin:
        share = admin.put("/v1/tenants/fair-a/share", json={"running_jobs": A_SHARE})
        assert share.status_code == 200, share.text
    upload = digits_upload(tmp_path / "mlp")
    with (
        stack.client(stack.create_key("fair-a")) as a,
        stack.client(stack.create_key("fair-b")) as b,
    ):
        model_a, model_b = upload_ready(a, upload)["id"], upload_ready(b, upload)["id"]
        a_ids = [submit_job(a, model_a, STEPS) for _ in range(A_JOBS)]
        held = _jobs(a, a_ids[A_SHARE:])
        assert all("share of 1" in (j["waiting_reason"] or "") for j in held), held
        wait_until(lambda: _jobs(a, a_ids[:1])[0]["started_at"], 60, "A's first job to start")
        b_ids = [submit_job(b, model_b, STEPS) for _ in range(B_JOBS)]
        wait_until(lambda: _all_ended(b, b_ids, allowed=("succeeded",)), 180, "B's jobs")
        for job_id in reversed(a_ids):  # the held ones first: cancelling them sends nothing
            a.post(f"/v1/jobs/{job_id}/cancel")
        wait_until(lambda: _all_ended(a, a_ids, allowed=ENDED), 60, "A's jobs to end")
        a_jobs, b_jobs = _jobs(a, a_ids), _jobs(b, b_ids)

    b_submitted = min(_at(j["created_at"]) for j in b_jobs)
    b_starts = sorted(_at(j["started_at"]) for j in b_jobs)
    a_ran = [j for j in a_jobs if j["started_at"]]
    a_before_b = [j for j in a_ran if _at(j["started_at"]) < b_starts[-1]]
    job_s = [(_at(j["finished_at"]) - _at(j["started_at"])).total_seconds() for j in b_jobs]
    first_b_wait = (b_starts[0] - b_submitted).total_seconds()
    print(
        f"\njob length {min(job_s):.1f}..{max(job_s):.1f} s; B's starts after its submission: "
        f"{', '.join(f'{(t - b_submitted).total_seconds():.2f} s' for t in b_starts)}; "
        f"A's jobs started by then {len(a_before_b)} of {A_JOBS}, by the end {len(a_ran)}; "
        f"A's jobs running at once at most {_most_at_once(a_jobs)}"
    )
    assert first_b_wait < max(job_s), "B's first job waited longer than one job-length"
    assert len(a_before_b) <= 2, "B's jobs waited behind A's flood"
    assert _most_at_once(a_jobs) == A_SHARE
