"""Datasets: tensors or JSONL text, checked against the model when a job names them."""

from __future__ import annotations

import io
import json

import numpy as np
import pytest

from tests.api.test_bad_input import assert_problem
from tests.fixtures.helpers import row_count
from tests.fixtures.stack import Stack


def _npz(**arrays: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    return buf.getvalue()


def post_dataset(api: Stack, content: bytes, name: str = "data.npz"):  # type: ignore[no-untyped-def]
    with api.client() as client:
        return client.post("/v1/datasets", files={"file": (name, content)})


class TestDatasetUpload:
    def test_npz_inspected(self, api: Stack) -> None:
        ids = np.ones((5, 12), dtype=np.int64)
        created = post_dataset(api, _npz(input_ids=ids, labels=np.arange(5)))
        assert created.status_code == 201, created.text
        body = created.json()
        assert body["format"] == "npz"
        assert body["inspection"]["samples"] == 5
        assert body["inspection"]["has_labels"] is True
        assert body["inspection"]["tensors"]["input_ids"] == {"shape": [5, 12], "dtype": "int64"}

    def test_jsonl(self, api: Stack) -> None:
        lines = "\n".join(json.dumps({"text": t, "label": i}) for i, t in enumerate(["a b", "c d"]))
        created = post_dataset(api, lines.encode(), "d.jsonl")
        assert created.status_code == 201, created.text
        assert created.json()["inspection"] == {
            "format": "jsonl",
            "samples": 2,
            "has_labels": True,
            "tensors": {},
        }

    @pytest.mark.parametrize(
        ("content", "needle"),
        [
            (_npz(x=np.array([{"a": 1}], dtype=object)), "safely"),
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
        wrong = post_dataset(api, _npz(pixels=np.ones((4, 64), dtype=np.float32))).json()["id"]
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
        assert row_count(api, "jobs") == 0

    def test_matching_dataset_accepted(self, api: Stack, model_id: str) -> None:
        ids = np.ones((4, 16), dtype=np.int64)
        good = post_dataset(api, _npz(input_ids=ids, attention_mask=ids)).json()["id"]
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
