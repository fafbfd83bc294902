"""Uploads are inspected by a worker; until then a job may not use them."""

from __future__ import annotations

from tests.api.test_bad_input import assert_problem
from tests.helpers import upload, wait_for_model
from tests.stack import Stack

RECIPE = {"steps": [{"technique": "quantization", "scheme": "int8_dynamic"}]}


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
