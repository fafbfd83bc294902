"""What a job does over its life, on a real deployment: the order jobs start in, giving up
after the last attempt, resuming its event stream, the states that refuse a request, and
what deleting its model leaves on disk."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from typing import Any

import httpx
import onnx
import pytest
from onnx import TensorProto, helper

from scripts.train_digits import digits_split
from tests.fixtures.helpers import (
    assert_problem,
    digits_upload,
    job_artifact_files,
    npz_bytes,
    submit_job,
    upload_ready,
    wait_for_dataset,
    wait_for_job,
    wait_until,
)
from tests.fixtures.stack import Stack, running_stack

pytestmark = pytest.mark.e2e

MAX_ATTEMPTS = 2
# Short heartbeats so a killed worker is noticed in seconds, not minutes.
FAST = {
    "MODELPRESS_HEARTBEAT_S": "1",
    "MODELPRESS_STALE_AFTER_S": "5",
    "MODELPRESS_RECONCILE_AFTER_S": "4",
    "MODELPRESS_CANCEL_POLL_S": "0.5",
    "MODELPRESS_MAX_ATTEMPTS": str(MAX_ATTEMPTS),
}
QUICK = [{"technique": "quantization", "scheme": "int8_dynamic"}]


@pytest.fixture(scope="module", params=["scaleout"])  # one kind: CI time; e2e covers both
def stack(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Stack]:
    tmp = tmp_path_factory.mktemp(f"jobs-{request.param}")
    with running_stack(request.param, tmp, **FAST) as running:  # type: ignore[arg-type]
        yield running


@pytest.fixture(scope="module")
def digits_zip(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    return digits_upload(tmp_path_factory.mktemp("mlp"))


@pytest.fixture(scope="module")
def model_id(stack: Stack, digits_zip: bytes) -> str:
    with stack.client() as client:
        return str(upload_ready(client, digits_zip, "digits.zip")["id"])


@pytest.fixture(scope="module")
def finished_job(stack: Stack, model_id: str) -> str:
    with stack.client() as client:
        job_id = submit_job(client, model_id, QUICK)
        job = wait_for_job(client, job_id, stack=stack, timeout=240)
        assert job["status"] == "succeeded", f"{job}\n{stack.logs()}"
        return job_id


def without_compute_pool(stack: Stack) -> None:
    """Stops every cpu worker; uploads are still inspected."""
    for name in [n for n in stack.procs if n != "api"]:
        stack.stop(name)
    stack.start_worker("inspector", queues="inspect")


def with_compute_pool(stack: Stack, name: str = "worker") -> None:
    stack.start_worker(name, queues="cpu")


def attempts_started(client: httpx.Client, job_id: str) -> int:
    return client.get(f"/v1/jobs/{job_id}/logs").text.count(" started on ")


class TestPriority:
    def test_queued_jobs_start_highest_priority_first(self, stack: Stack, model_id: str) -> None:
        without_compute_pool(stack)
        try:
            with stack.client() as client:
                # Submitted neither in ascending nor descending order, so FIFO cannot pass.
                priorities = [2, 9, 0, 6]
                ids = {submit_job(client, model_id, QUICK, priority=p): p for p in priorities}
                with_compute_pool(stack)  # one worker, concurrency 1: one job at a time
                jobs = [wait_for_job(client, j, stack=stack, timeout=300) for j in ids]
        finally:
            stack.stop("worker")
            with_compute_pool(stack)
        assert all(j["status"] == "succeeded" for j in jobs), jobs
        started = [ids[j["id"]] for j in sorted(jobs, key=lambda j: j["started_at"])]
        assert started == sorted(priorities, reverse=True), (started, stack.name)


class TestMaxAttempts:
    def test_gives_up_after_the_last_attempt(self, stack: Stack, model_id: str) -> None:
        split = digits_split(image=False)
        without_compute_pool(stack)
        with stack.client() as client:
            train = client.post(
                "/v1/datasets",
                files={"file": ("train.npz", npz_bytes(input=split.x_train, labels=split.y_train))},
            )
            assert train.status_code == 201, train.text
            assert wait_for_dataset(client, train.json()["id"])["status"] == "ready"
            # Trains for a minute: every attempt is still running when its worker dies.
            slow = [{"technique": "distillation", "width": 0.5, "epochs": 200, "max_seconds": 60}]
            job_id = submit_job(client, model_id, slow, data={"train": train.json()["id"]})
            for attempt in range(1, MAX_ATTEMPTS + 1):
                name = f"doomed-{attempt}"
                with_compute_pool(stack, name)
                wait_until(
                    lambda a=attempt: _training(client.get(f"/v1/jobs/{job_id}").json(), a),
                    120,
                    f"attempt {attempt} to start training",
                )
                stack.kill(name)
            job = wait_for_job(client, job_id, stack=stack, timeout=60)
            assert job["status"] == "failed", job
            assert job["attempts"] == MAX_ATTEMPTS
            assert f"lost {MAX_ATTEMPTS} times" in job["error"], job["error"]
            # With a live worker again (and the reaper and re-sender running), a later job
            # finishing proves the pool was free to take the failed one, and did not.
            with_compute_pool(stack)
            probe = submit_job(client, model_id, QUICK)
            assert wait_for_job(client, probe, stack=stack, timeout=240)["status"] == "succeeded"
            again = client.get(f"/v1/jobs/{job_id}").json()
            assert again["status"] == "failed" and again["attempts"] == MAX_ATTEMPTS, again
            assert attempts_started(client, job_id) == MAX_ATTEMPTS
            assert job_artifact_files(stack, job_id) == []


def _training(job: dict[str, Any], attempt: int) -> bool:
    return (
        job["status"] == "running" and job["attempts"] == attempt and "distillation" in job["phase"]
    )


def read_events(
    client: httpx.Client, job_id: str, last_event_id: str | None = None
) -> list[tuple[str | None, str, dict[str, Any]]]:
    """(id, event, data) for every event until the stream ends."""
    headers = {"Last-Event-ID": last_event_id} if last_event_id is not None else {}
    events: list[tuple[str | None, str, dict[str, Any]]] = []
    fields: dict[str, str] = {}
    with client.stream("GET", f"/v1/jobs/{job_id}/events", headers=headers, timeout=60) as response:
        assert response.status_code == 200
        for line in response.iter_lines():
            if not line:
                if "event" in fields:
                    events.append((fields.get("id"), fields["event"], json.loads(fields["data"])))
                fields = {}
            elif not line.startswith(":"):
                key, _, value = line.partition(":")
                fields[key] = value.strip()
    return events


class TestEventStream:
    def test_last_event_id_resumes_after_that_event(self, stack: Stack, finished_job: str) -> None:
        with stack.client() as client:
            full = read_events(client, finished_job)
            logs = [(int(i), data) for i, kind, data in full if kind == "log" and i is not None]
            ids = [i for i, _ in logs]
            assert len(ids) >= 4, full
            assert ids == sorted(set(ids)), "log ids repeat or go backwards"
            middle = ids[len(ids) // 2]
            resumed = read_events(client, finished_job, str(middle))
        resumed_logs = [(int(i), d) for i, kind, d in resumed if kind == "log" and i is not None]
        assert resumed_logs == [(i, d) for i, d in logs if i > middle]
        assert resumed[-1][1] == "end"


class TestConflicts:
    def test_cancelling_a_finished_job_is_409(self, stack: Stack, finished_job: str) -> None:
        with stack.client() as client:
            body = assert_problem(client.post(f"/v1/jobs/{finished_job}/cancel"), 409)
            assert "succeeded" in body["detail"]
            assert client.get(f"/v1/jobs/{finished_job}").json()["status"] == "succeeded"

    def test_unfinished_job_has_no_report_or_artifact(self, stack: Stack, model_id: str) -> None:
        without_compute_pool(stack)
        try:
            with stack.client() as client:
                job_id = submit_job(client, model_id, QUICK)
                for what in ("report", "artifact"):
                    body = assert_problem(client.get(f"/v1/jobs/{job_id}/{what}"), 409)
                    assert "queued" in body["detail"], body
                assert client.post(f"/v1/jobs/{job_id}/cancel").status_code == 200
                assert_problem(client.post(f"/v1/jobs/{job_id}/cancel"), 409)
                assert_problem(client.get(f"/v1/jobs/{job_id}/report"), 409)
        finally:
            with_compute_pool(stack)


class TestArtifactStorage:
    def test_artifact_missing_from_storage_is_404(self, stack: Stack, model_id: str) -> None:
        with stack.client() as client:
            job_id = submit_job(client, model_id, QUICK)
            assert wait_for_job(client, job_id, stack=stack, timeout=240)["status"] == "succeeded"
            files = job_artifact_files(stack, job_id)
            assert len(files) == 1, files
            files[0].unlink()
            body = assert_problem(client.get(f"/v1/jobs/{job_id}/artifact"), 404)
            assert "missing" in body["detail"]
            assert client.get(f"/v1/jobs/{job_id}/report").status_code == 200

    def test_deleting_a_model_removes_its_job_artifacts(
        self, stack: Stack, digits_zip: bytes
    ) -> None:
        with stack.client() as client:
            own = upload_ready(client, digits_zip, "to-delete.zip")["id"]
            jobs = [submit_job(client, own, QUICK) for _ in range(2)]
            for job_id in jobs:
                assert wait_for_job(client, job_id, stack=stack, timeout=240)["status"] == (
                    "succeeded"
                )
            upload_dir = stack.data_dir / "storage" / "models" / own
            artifacts = [f for j in jobs for f in job_artifact_files(stack, j)]
            assert len(artifacts) == 2 and upload_dir.is_dir(), artifacts
            assert client.delete(f"/v1/models/{own}").status_code == 204
        assert [f for f in artifacts if f.exists()] == []
        assert not upload_dir.exists()
        assert all(not (stack.data_dir / "storage" / "artifacts" / j).exists() for j in jobs)


def tiny_onnx() -> bytes:
    """An ONNX graph with the digits MLP's input, which inspection accepts."""
    weight = helper.make_tensor("w", TensorProto.FLOAT, [64, 10], [0.01] * 640)
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["input", "w"], ["logits"])],
        "student",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["batch", 64])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["batch", 10])],
        [weight],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    onnx.checker.check_model(model)
    buf = io.BytesIO()
    onnx.save(model, buf)
    return buf.getvalue()


class TestUploadedStudent:
    def test_onnx_student_is_refused(self, stack: Stack, model_id: str) -> None:
        with stack.client() as client:
            student = upload_ready(client, tiny_onnx(), "student.onnx")
            assert student["format"] == "onnx"
            step = {"technique": "distillation", "student": "uploaded",
                    "student_model_id": student["id"], "epochs": 1}  # fmt: skip
            before = client.get("/v1/jobs").json()["total"]
            response = client.post(
                "/v1/jobs", json={"model_id": model_id, "recipe": {"steps": [step]}}
            )
            body = assert_problem(response, 422)
            assert "ONNX" in body["detail"] and "cannot be trained" in body["detail"], body
            assert client.get("/v1/jobs").json()["total"] == before
