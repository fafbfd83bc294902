"""Platform hooks: Idempotency-Key on the create requests, labels and the list filters.

A retry with the same key and body answers the original resource and creates nothing (rows
counted in the stack's database, run_job messages counted in its Redis queues); a different body
is 422; keys are per tenant and expire after a day; concurrent requests with one key make one
resource, and a compute worker then runs that job exactly once. Label filters and repeated status
filters are applied in SQL, so totals count only what matches.
"""

from __future__ import annotations

import base64
import json
import threading
import uuid
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import httpx
import numpy as np
import pytest
import redis
import sqlalchemy as sa

from app.broker import QueueName, TaskName
from app.db.models import IdempotencyKey, utcnow
from tests.api.test_deletion_races import INT8, mlp_zip
from tests.fixtures.helpers import (
    assert_problem,
    npz_bytes,
    row_count,
    upload_ready,
    wait_for_job,
    wait_until,
)
from tests.fixtures.stack import Stack, running_stack

DATASET = npz_bytes(x=np.ones((4, 64), dtype=np.float32))


@pytest.fixture(scope="module")
def mlp_id(api: Stack) -> Iterator[str]:
    with api.client() as client:
        yield upload_ready(client, mlp_zip(seed=1), "mlp.zip")["id"]


def post_upload(
    client: httpx.Client,
    route: str,
    *,
    content: bytes,
    key: str | None = None,
    labels: dict[str, str] | str | None = None,
    filename: str = "upload.bin",
) -> httpx.Response:
    data = (
        {}
        if labels is None
        else {"labels": labels if isinstance(labels, str) else json.dumps(labels)}
    )
    headers = {"Idempotency-Key": key} if key else {}
    return client.post(route, files={"file": (filename, content)}, data=data, headers=headers)


def post_job(
    client: httpx.Client, model_id: str, *, key: str | None = None, **extra: Any
) -> httpx.Response:
    headers = {"Idempotency-Key": key} if key else {}
    body = {"model_id": model_id, "recipe": {"steps": INT8}, **extra}
    return client.post("/v1/jobs", json=body, headers=headers)


UPLOADS = {"/v1/models": ("models", "mlp.zip"), "/v1/datasets": ("datasets", "data.npz")}


def upload_content(route: str) -> bytes:
    return mlp_zip(seed=2) if route == "/v1/models" else DATASET


def new_key() -> str:
    return f"key-{uuid.uuid4()}"


class TestIdempotentUploads:
    @pytest.mark.parametrize("route", list(UPLOADS))
    def test_retry_returns_the_original_and_creates_nothing(self, api: Stack, route: str) -> None:
        table, filename = UPLOADS[route]
        content, key = upload_content(route), new_key()
        with api.client() as client:
            first = post_upload(
                client, route, content=content, key=key, labels={"a": "1"}, filename=filename
            )
            assert first.status_code == 201, first.text
            rows = row_count(api, table)
            again = post_upload(
                client, route, content=content, key=key, labels={"a": "1"}, filename=filename
            )
        assert again.status_code == 201, again.text
        assert again.json()["id"] == first.json()["id"]
        assert again.headers["Location"] == first.headers["Location"]
        assert row_count(api, table) == rows

    @pytest.mark.parametrize("route", list(UPLOADS))
    def test_same_key_different_body_is_422(self, api: Stack, route: str) -> None:
        table, filename = UPLOADS[route]
        content, key = upload_content(route), new_key()
        with api.client() as client:
            first = post_upload(client, route, content=content, key=key, filename=filename)
            assert first.status_code == 201, first.text
            rows = row_count(api, table)
            relabelled = post_upload(
                client, route, content=content, key=key, labels={"b": "2"}, filename=filename
            )
            renamed = post_upload(client, route, content=content, key=key, filename="other.bin")
            other_file = post_upload(
                client, route, content=content + b"\0", key=key, filename=filename
            )
        for response in (relabelled, renamed, other_file):
            assert assert_problem(response, 422)["type"] == "/problems/idempotency-key-reused"
        assert row_count(api, table) == rows

    def test_another_tenants_same_key_is_independent(self, api: Stack) -> None:
        key = new_key()
        with (
            api.client() as mine,
            api.client(api.create_key(f"t-{uuid.uuid4().hex[:8]}")) as theirs,
        ):
            first = post_upload(mine, "/v1/datasets", content=DATASET, key=key)
            other = post_upload(theirs, "/v1/datasets", content=DATASET, key=key)
            assert first.status_code == other.status_code == 201, (first.text, other.text)
            assert other.json()["id"] != first.json()["id"]
            assert theirs.get(f"/v1/datasets/{first.json()['id']}").status_code == 404

    def test_key_longer_than_255_is_refused(self, api: Stack) -> None:
        with api.client() as client:
            response = post_upload(client, "/v1/datasets", content=DATASET, key="k" * 256)
        assert_problem(response, 422)


def run_job_messages(stack: Stack, job_id: str) -> int:
    """run_job messages for ``job_id`` waiting in the stack's Redis: kombu keeps one list per
    queue and priority step (``cpu``, ``cpu:1`` ...), each item a JSON envelope whose base64
    body is ``[args, kwargs, embed]``. Only meaningful while no compute worker consumes them."""
    client = redis.Redis.from_url(stack.env["MODELPRESS_BROKER_URL"])
    found = 0
    try:
        for queue in (QueueName.CPU, QueueName.GPU):
            for key in [queue.value, *(f"{queue.value}:{step}" for step in range(1, 10))]:
                for raw in client.lrange(key, 0, -1):
                    message = json.loads(raw)
                    args = json.loads(base64.b64decode(message["body"]))[0]
                    found += message["headers"]["task"] == TaskName.RUN_JOB and args == [job_id]
    finally:
        client.close()
    return found


class TestIdempotentJobs:
    def test_retry_returns_the_original_job(self, api: Stack, mlp_id: str) -> None:
        key = new_key()
        with api.client() as client:
            first = post_job(client, mlp_id, key=key, labels={"run": "1"})
            assert first.status_code == 202, first.text
            rows = row_count(api, "jobs")
            # Key order differs; the canonical JSON is the same request.
            again = client.post(
                "/v1/jobs",
                json={"labels": {"run": "1"}, "recipe": {"steps": INT8}, "model_id": mlp_id},
                headers={"Idempotency-Key": key},
            )
            changed = post_job(client, mlp_id, key=key, labels={"run": "1"}, priority=9)
        assert again.status_code == 202, again.text
        assert again.json()["id"] == first.json()["id"]
        assert again.headers["Location"] == first.headers["Location"]
        assert_problem(changed, 422)
        assert row_count(api, "jobs") == rows
        assert run_job_messages(api, first.json()["id"]) == 1  # the retry sent nothing

    def test_concurrent_requests_with_one_key_make_one_job(self, api: Stack, mlp_id: str) -> None:
        key, answers = new_key(), []
        rows = row_count(api, "jobs")
        start = threading.Barrier(6)

        def submit() -> None:
            with api.client() as client:
                start.wait()
                answers.append(post_job(client, mlp_id, key=key))

        threads = [threading.Thread(target=submit) for _ in range(6)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert [a.status_code for a in answers] == [202] * 6, [a.text for a in answers]
        assert len({a.json()["id"] for a in answers}) == 1
        assert row_count(api, "jobs") == rows + 1
        assert run_job_messages(api, answers[0].json()["id"]) == 1

    def test_a_key_expires_after_a_day(self, api: Stack, mlp_id: str) -> None:
        key = new_key()
        with api.client() as client:
            first = post_job(client, mlp_id, key=key)
            assert first.status_code == 202, first.text
            _age_key(api, key, hours=25)
            later = post_job(client, mlp_id, key=key, priority=1)
        assert later.status_code == 202, later.text
        assert later.json()["id"] != first.json()["id"]


@pytest.fixture(scope="module")
def computing(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """A stack of its own whose compute worker a test starts: the package's `api` stack has
    none, and one there would run every job the other modules leave queued."""
    with running_stack(
        "scaleout", tmp_path_factory.mktemp("api-idempotent-run"), worker=False
    ) as running:
        yield running


class TestIdempotentJobRuns:
    def test_concurrent_retries_send_one_message_and_the_job_runs_once(
        self, computing: Stack
    ) -> None:
        key, answers = new_key(), []
        with computing.client() as client:
            model_id = upload_ready(client, mlp_zip(seed=4), "mlp.zip")["id"]
        start = threading.Barrier(6)

        def submit() -> None:
            with computing.client() as client:
                start.wait()
                answers.append(post_job(client, model_id, key=key))

        threads = [threading.Thread(target=submit) for _ in range(6)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert [a.status_code for a in answers] == [202] * 6, [a.text for a in answers]
        (job_id,) = {a.json()["id"] for a in answers}
        # Counted before any compute worker exists to take them: one send for six requests.
        assert run_job_messages(computing, job_id) == 1

        computing.start_worker("compute", queues=QueueName.CPU.value)
        with computing.client() as client:
            job = wait_for_job(client, job_id, stack=computing, timeout=300)
            assert job["status"] == "succeeded", f"{job}\n{computing.logs()}"
            again = post_job(client, model_id, key=key)  # a retry after the run
            assert again.status_code == 202 and again.json()["id"] == job_id, again.text
            wait_until(lambda: run_job_messages(computing, job_id) == 0, 30, "the queue to drain")
            job = client.get(f"/v1/jobs/{job_id}").json()
            log = client.get(f"/v1/jobs/{job_id}/logs").text
        assert row_count(computing, "jobs") == 1
        assert job["status"] == "succeeded" and job["attempts"] == 1, job
        # One claim: a duplicate message would have been a second attempt (or a refused claim).
        assert [line for line in log.splitlines() if "attempt" in line and "started on" in line]
        assert log.count("started on") == 1, log


def _age_key(api: Stack, key: str, *, hours: int) -> None:
    engine = sa.create_engine(api.database_url)
    try:
        with engine.begin() as conn:
            conn.execute(
                sa.update(IdempotencyKey)
                .where(IdempotencyKey.key == key)
                .values(created_at=utcnow() - timedelta(hours=hours))
            )
    finally:
        engine.dispose()


class TestLabels:
    def test_bad_labels_are_422(self, api: Stack, mlp_id: str) -> None:
        too_many = {f"k{i}": "v" for i in range(33)}
        with api.client() as client:
            for labels in (
                "not json",
                "[1]",
                json.dumps({"a": 1}),
                json.dumps({"=x": "v"}),
                json.dumps(too_many),
            ):
                assert_problem(
                    post_upload(client, "/v1/datasets", content=DATASET, labels=labels), 422
                )
            assert_problem(post_job(client, mlp_id, labels={"k": "v" * 256}), 422)
            assert_problem(client.get("/v1/jobs", params={"label": "novalue"}), 422)

    def test_uploads_filtered_by_labels_in_sql(self, api: Stack) -> None:
        run = uuid.uuid4().hex[:8]
        wanted = [{"run": run, "team": "a", "env": "prod"}, {"run": run, "team": "a", "env": "dev"}]
        other = {"run": run, "team": "b", "env": "prod"}
        with api.client() as client:
            created = [
                post_upload(client, "/v1/datasets", content=DATASET, labels=labels).json()
                for labels in [*wanted, other]
            ]
            assert [c["labels"] for c in created] == [*wanted, other]
            team_a = client.get(
                "/v1/datasets", params={"label": [f"run={run}", "team=a"], "limit": 1}
            ).json()
            prod_a = client.get(
                "/v1/datasets", params={"label": [f"run={run}", "team=a", "env=prod"]}
            ).json()
            none = client.get("/v1/models", params={"label": f"run={run}"}).json()
        assert team_a["total"] == 2 and len(team_a["items"]) == 1
        assert [d["id"] for d in prod_a["items"]] == [created[0]["id"]]
        assert none["total"] == 0

    def test_models_filtered_by_labels(self, api: Stack) -> None:
        run = uuid.uuid4().hex[:8]
        with api.client() as client:
            model = post_upload(
                client, "/v1/models", content=mlp_zip(seed=3), labels={"run": run}, filename="m.zip"
            )
            assert model.status_code == 201, model.text
            found = client.get("/v1/models", params={"label": f"run={run}"}).json()
        assert [m["id"] for m in found["items"]] == [model.json()["id"]]
        assert found["items"][0]["labels"] == {"run": run} and found["total"] == 1

    def test_jobs_filtered_by_labels_and_any_of_several_statuses(
        self, api: Stack, mlp_id: str
    ) -> None:
        run = uuid.uuid4().hex[:8]
        with api.client() as client:
            jobs = [
                post_job(client, mlp_id, labels={"run": run, "n": str(n)}).json() for n in range(3)
            ]
            assert client.post(f"/v1/jobs/{jobs[0]['id']}/cancel").status_code == 200

            def listed(**params: Any) -> set[str]:
                page = client.get("/v1/jobs", params={"label": f"run={run}", **params}).json()
                assert page["total"] == len(page["items"]), page
                return {j["id"] for j in page["items"]}

            ids = [j["id"] for j in jobs]
            assert listed() == set(ids)
            assert listed(status="queued") == set(ids[1:])
            assert listed(status=["queued", "cancelled"]) == set(ids)
            assert listed(status=["succeeded", "cancelled"]) == {ids[0]}
            assert client.get("/v1/jobs", params={"label": [f"run={run}", "n=2"]}).json()["items"][
                0
            ]["labels"] == {"run": run, "n": "2"}
