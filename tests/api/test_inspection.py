"""Uploads are inspected by a worker; until then a job may not use them."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.api.test_bad_input import assert_problem
from tests.fixtures.helpers import upload, wait_for_model
from tests.fixtures.stack import ROOT, Stack

RECIPE = {"steps": [{"technique": "quantization", "scheme": "int8_dynamic"}]}


@pytest.fixture(scope="module")
def api(own_api: Stack) -> Stack:
    """Not the package's shared stack: these tests stop its inspector, purge the inspect queue
    and restart the inspector with other settings."""
    return own_api


def test_pending_until_a_worker_inspects_it(api: Stack, minilm_targz: bytes) -> None:
    api.stop("inspector")
    try:
        with api.client() as client:
            created = upload(client, minilm_targz, "minilm.tar.gz")
            assert created.status_code == 201, created.text
            model = created.json()
            assert model["status"] == "pending"
            assert model["inspection"] == {}
            job = client.post("/v1/jobs", json={"model_id": model["id"], "recipe": RECIPE})
            body = assert_problem(job, 409)
            assert "still being inspected" in str(body["detail"])
            assert job.headers["Retry-After"].isdigit()
            assert client.get(f"/v1/models/{model['id']}").json()["status"] == "pending"
    finally:
        api.start_worker("inspector", queues="inspect")
    with api.client() as client:
        inspected = wait_for_model(client, model["id"], timeout=120)
        assert inspected["status"] == "ready", inspected
        assert inspected["format"] == "huggingface"
        assert inspected["inspection"]["architecture"] == "BertModel"
        assert inspected["inspection"]["parameters"] > 20_000_000
        assert client.delete(f"/v1/models/{model['id']}").status_code == 204


def test_a_lost_inspection_message_is_resent(api: Stack, minilm_targz: bytes) -> None:
    """The row is the truth: with the broker's message gone, the reconciler sends it again."""
    api.stop("inspector")
    try:
        with api.client() as client:
            created = upload(client, minilm_targz, "minilm.tar.gz")
            assert created.status_code == 201, created.text
        purged = subprocess.run(
            [sys.executable, "-m", "celery", "-A", "workers.celery_app:celery_app", "purge",
             "-f", "-Q", "inspect"],
            cwd=ROOT, env=api.env, capture_output=True, text=True, check=True,
        )  # fmt: skip
        assert "1 message" in purged.stdout, purged.stdout
    finally:
        fast = {"MODELPRESS_HEARTBEAT_S": "0.5", "MODELPRESS_RECONCILE_AFTER_S": "2"}
        saved = dict(api.env)
        api.env.update(fast)
        api.start_worker("inspector", queues="inspect")
        api.env.clear()
        api.env.update(saved)
    with api.client() as client:
        inspected = wait_for_model(client, created.json()["id"], timeout=120)
        assert inspected["status"] == "ready", f"{inspected}\n{api.logs()}"
        assert client.delete(f"/v1/models/{inspected['id']}").status_code == 204
