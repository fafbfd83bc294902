"""Per-tenant quotas: past a tenant's stored bytes or active jobs, 429 with a problem body; other
tenants are unaffected."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from tests.fixtures.helpers import (
    assert_problem,
    digits_upload,
    npz_bytes,
    submit_job,
    upload_ready,
    wait_for_job,
)
from tests.fixtures.stack import Stack, running_stack

pytestmark = pytest.mark.e2e
FP16 = [{"technique": "quantization", "scheme": "fp16"}]


@pytest.fixture(scope="module")
def quota_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    env = {"MODELPRESS_TENANT_MAX_STORED_BYTES": str(400_000),
           "MODELPRESS_TENANT_MAX_ACTIVE_JOBS": "1"}  # fmt: skip
    with running_stack("embedded", tmp_path_factory.mktemp("quota"), **env) as running:
        yield running


def test_storage_quota(quota_stack: Stack) -> None:
    rows = npz_bytes(x=np.random.default_rng(0).random((600, 64), np.float32))  # ~154 kB
    alpha, beta = quota_stack.create_key("alpha"), quota_stack.create_key("beta")
    with quota_stack.client(alpha) as client:
        for _ in range(2):
            assert client.post("/v1/datasets", files={"file": ("d.npz", rows)}).status_code == 201
        refused = client.post("/v1/datasets", files={"file": ("d.npz", rows)})
        body = assert_problem(refused, 429)
        assert "400000" in body["detail"]
        assert client.get("/v1/datasets").json()["total"] == 2  # nothing half-written
    with quota_stack.client(beta) as client:
        assert client.post("/v1/datasets", files={"file": ("d.npz", rows)}).status_code == 201


def test_active_jobs_quota(quota_stack: Stack, tmp_path: Path) -> None:
    with quota_stack.client(quota_stack.create_key("gamma")) as client:
        model = upload_ready(client, digits_upload(tmp_path / "mlp"))
        first = submit_job(client, model["id"], FP16)
        refused = client.post("/v1/jobs", json={"model_id": model["id"], "recipe": {"steps": FP16}})
        assert_problem(refused, 429)
        assert refused.headers["retry-after"]
        assert wait_for_job(client, first, stack=quota_stack)["status"] == "succeeded"
        assert submit_job(client, model["id"], FP16)  # room again once the first has ended
