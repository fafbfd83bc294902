"""A second job on the same model and target reuses the original's measurement (issue 24),
and only within its own tenant: a hit would tell another tenant that model's timings."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.fixtures.helpers import digits_upload, submit_job, upload_ready, wait_for_job
from tests.fixtures.stack import Stack

pytestmark = pytest.mark.e2e

STEPS = [{"technique": "quantization", "scheme": "int8_dynamic"}]


@pytest.fixture(scope="module")
def stack(scaleout_stack: Stack) -> Stack:
    return scaleout_stack


def _baseline(stack: Stack, client: httpx.Client, model_id: str, **extra: Any) -> dict[str, Any]:
    job = wait_for_job(client, submit_job(client, model_id, STEPS, **extra), stack=stack)
    assert job["status"] == "succeeded", f"{job}\n{stack.logs()}"
    report = client.get(f"/v1/jobs/{job['id']}/report").json()["report"]
    return report["original"] | {"note": report["original"]["baseline"]}


def test_second_job_reuses_the_baseline_of_its_own_tenant(stack: Stack, tmp_path: Path) -> None:
    content = digits_upload(tmp_path, epochs=1)
    with stack.client() as client:
        model_id = upload_ready(client, content, "digits-mlp.zip")["id"]
        first = _baseline(stack, client, model_id)
        second = _baseline(stack, client, model_id)
    assert first["note"]["reused"] is False
    assert second["note"] == {**first["note"], "reused": True}
    assert second["latency_p50_ms"] == first["latency_p50_ms"]

    if stack.api_key is None:
        return  # one tenant only where authentication is off
    with stack.client(stack.create_key("baseline-other")) as other:
        theirs = upload_ready(other, content, "digits-mlp.zip")["id"]
        measured = _baseline(stack, other, theirs)
    assert measured["note"]["reused"] is False
    assert measured["note"]["key"] == first["note"]["key"]
