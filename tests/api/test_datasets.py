"""Datasets: tensors or JSONL text, inspected by a worker, checked against the model when a job
names them. (Header screening, worker verdicts and caps: test_dataset_inspection.py.)"""

from __future__ import annotations

import io
import json

import numpy as np
import pytest

from tests.api.test_bad_input import assert_problem
from tests.fixtures.helpers import row_count, upload_dataset_ready, wait_for_dataset
from tests.fixtures.stack import Stack


def _npz(**arrays: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    return buf.getvalue()


def post_dataset(api: Stack, content: bytes, name: str = "data.npz"):  # type: ignore[no-untyped-def]
    with api.client() as client:
        return client.post("/v1/datasets", files={"file": (name, content)})


def ready(api: Stack, content: bytes, name: str = "data.npz") -> str:
    with api.client() as client:
        return str(upload_dataset_ready(client, content, name)["id"])


class TestDatasetUpload:
    def test_npz_inspected(self, api: Stack) -> None:
        ids = np.ones((5, 12), dtype=np.int64)
        created = post_dataset(api, _npz(input_ids=ids, labels=np.arange(5)))
        assert created.status_code == 201, created.text
        assert created.json()["status"] == "pending"
        with api.client() as client:
            body = wait_for_dataset(client, created.json()["id"])
        assert body["status"] == "ready", body
        assert body["format"] == "npz"
        assert body["inspection"]["samples"] == 5
        assert body["inspection"]["has_labels"] is True
        assert body["inspection"]["tensors"]["input_ids"] == {"shape": [5, 12], "dtype": "int64"}

    def test_jsonl(self, api: Stack) -> None:
        lines = "\n".join(json.dumps({"text": t, "label": i}) for i, t in enumerate(["a b", "c d"]))
        created = post_dataset(api, lines.encode(), "d.jsonl")
        assert created.status_code == 201, created.text
        with api.client() as client:
            body = wait_for_dataset(client, created.json()["id"])
        assert body["inspection"] == {
            "format": "jsonl",
            "samples": 2,
            "has_labels": True,
            "tensors": {},
        }

    @pytest.mark.parametrize(
        ("content", "needle"),
        [
            (_npz(x=np.array([{"a": 1}], dtype=object)), "dtype object"),
            (b'{"text": 3}\n', "text"),
            (b"plain words", "unknown dataset format"),
            (_npz(a=np.ones((3, 2)), b=np.ones((4, 2))), "disagree"),
        ],
        ids=["object-array-pickle", "bad-jsonl", "unknown", "ragged"],
    )
    def test_rejected(self, api: Stack, content: bytes, needle: str) -> None:
        before = row_count(api, "datasets")
        body = assert_problem(post_dataset(api, content), 422)
        assert needle in str(body["detail"])
        assert row_count(api, "datasets") == before


class TestDatasetAgainstModel:
    def test_mismatch_refused_at_submission(self, api: Stack, model_id: str) -> None:
        wrong = ready(api, _npz(pixels=np.ones((4, 64), dtype=np.float32)))
        jobs_before = row_count(api, "jobs")
        steps = [{"technique": "quantization", "scheme": "int8_dynamic"}]
        with api.client() as client:
            response = client.post(
                "/v1/jobs",
                json={"model_id": model_id, "recipe": {"steps": steps}, "data": {"eval": wrong}},
            )
            missing = client.post(
                "/v1/jobs",
                json={"model_id": model_id, "recipe": {"steps": steps}, "data": {"eval": "nope"}},
            )
        assert "pixels" in str(assert_problem(response, 422)["detail"])
        assert_problem(missing, 404)
        assert row_count(api, "jobs") == jobs_before

    def test_matching_dataset_accepted(self, api: Stack, model_id: str) -> None:
        ids = np.ones((4, 16), dtype=np.int64)
        good = ready(api, _npz(input_ids=ids, attention_mask=ids))
        steps = [{"technique": "quantization", "scheme": "int8_dynamic"}]
        with api.client() as client:
            response = client.post(
                "/v1/jobs",
                json={
                    "model_id": model_id,
                    "recipe": {"steps": steps},
                    "data": {"calibration": good},
                },
            )
            assert response.status_code == 202, response.text
            assert response.json()["data"] == {"calibration": good}
            in_use = client.delete(f"/v1/datasets/{good}")
            assert_problem(in_use, 409)
            client.post(f"/v1/jobs/{response.json()['id']}/cancel")
            assert client.delete(f"/v1/datasets/{good}").status_code == 204
