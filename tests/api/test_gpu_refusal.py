"""A job that asks for a GPU nothing can give is refused at submission, with the reason.

Never queued to be measured on a CPU and reported as a GPU's: the CPU pool serves here, and a
worker that serves the gpu pool without a GPU does not count as one.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest
import torch

from tests.fixtures.helpers import (
    assert_problem,
    digits_upload,
    row_count,
    upload_ready,
    wait_until,
)
from tests.fixtures.stack import Stack

FP16 = [{"technique": "quantization", "scheme": "fp16"}]


@pytest.fixture(scope="module")
def digits_model(stack: Stack, tmp_path_factory: pytest.TempPathFactory) -> str:
    with stack.client() as client:
        return str(upload_ready(client, digits_upload(tmp_path_factory.mktemp("mlp")))["id"])


def _submit(client: httpx.Client, model_id: str, device: str) -> httpx.Response:
    body: dict[str, Any] = {"model_id": model_id, "recipe": {"steps": FP16}}
    body["target"] = {"device": device}
    return client.post("/v1/jobs", json=body)


def _refusal(client: httpx.Client, model_id: str) -> dict[str, Any]:
    body = assert_problem(_submit(client, model_id, "gpu"), 422)
    assert body["type"] == "/problems/device-unavailable", body
    return body


def test_gpu_job_without_a_gpu_pool_is_refused(stack: Stack, digits_model: str) -> None:
    jobs_before = row_count(stack, "jobs")
    with stack.client() as client:
        body = _refusal(client, digits_model)
    assert "no live worker serves the 'gpu' pool" in body["detail"], body
    assert "device 'cpu'" in body["detail"], "the refusal says what to do instead"
    assert row_count(stack, "jobs") == jobs_before, "a refused job leaves no row"


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine's gpu worker has a GPU")
def test_gpu_pool_worker_without_a_gpu_does_not_count(
    stack: Stack, digits_model: str, tmp_path: Path
) -> None:
    stack.start_worker("gpu-pool-no-gpu", queues="gpu")
    try:
        with stack.client() as client:
            workers = wait_until(
                lambda: [w for w in client.get("/v1/workers").json() if "gpu" in w["queues"]],
                60,
                "the gpu-pool worker to register",
            )
            assert workers[0]["gpu_name"] is None
            body = _refusal(client, digits_model)
            assert "reports a GPU" in body["detail"] and workers[0]["name"] in body["detail"]
            auto = _submit(client, digits_model, "auto")
            assert auto.status_code == 202, auto.text
            job = auto.json()
            assert (job["queue"], job["target"]["device"]) == ("cpu", "cpu"), job
    finally:
        stack.stop("gpu-pool-no-gpu")
