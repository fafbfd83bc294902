"""The whole product over HTTP: upload -> queue -> celery worker -> report and artifact.

Runs on the embedded default (SQLite + filesystem broker) and on PostgreSQL + Redis.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest

from tests.helpers import (
    cosine_rows,
    mean_pool,
    unpack_artifact,
    upload,
    upload_ready,
    wait_for_job,
    wait_for_model,
)
from tests.stack import Stack

pytestmark = pytest.mark.e2e

HELD_OUT = [
    "A quiet river winds through the old town.",
    "Where can I find the nearest pharmacy?",
    "The orchestra rehearsed the symphony twice.",
    "Profits fell sharply in the third quarter.",
]
INT8_STEP = {"technique": "quantization", "scheme": "int8_dynamic"}


class TestInt8DynamicEndToEnd:
    def test_upload_compress_download(
        self, stack: Stack, minilm_zip: bytes, minilm_dir: Path, tmp_path: Path
    ) -> None:
        with stack.client() as client:
            ready = client.get("/readyz")
            assert ready.status_code == 200, ready.text

            created = upload(client, minilm_zip, "all-MiniLM-L6-v2.zip")
            assert created.status_code == 201, created.text
            assert created.json()["status"] == "pending"
            model = wait_for_model(client, created.json()["id"])
            assert model["format"] == "huggingface"
            assert model["status"] == "ready", model
            assert model["sha256"] == hashlib.sha256(minilm_zip).hexdigest()
            assert model["size_bytes"] == len(minilm_zip)
            assert model["inspection"]["parameters"] > 22_000_000

            body = {"model_id": model["id"], "recipe": {"steps": [INT8_STEP]}}
            first = client.post("/v1/jobs", json=body)
            second = client.post("/v1/jobs", json=body)
            assert first.status_code == 202, first.text
            assert first.headers["location"] == f"/v1/jobs/{first.json()['id']}"
            # One worker with concurrency 1: the second job is still queued and can be cancelled.
            cancelled = client.post(f"/v1/jobs/{second.json()['id']}/cancel")
            assert cancelled.status_code == 200, cancelled.text
            assert cancelled.json()["status"] == "cancelled"

            in_use = client.delete(f"/v1/models/{model['id']}")
            assert in_use.status_code == 409
            assert in_use.headers["content-type"] == "application/problem+json"

            job = wait_for_job(client, first.json()["id"], stack=stack)
            assert job["status"] == "succeeded", f"{job}\n{stack.logs()}"
            assert job["progress"] == 1.0
            assert job["artifact_format"] == "onnx"

            again = client.get(f"/v1/jobs/{second.json()['id']}").json()
            assert again["status"] == "cancelled"
            assert again["started_at"] is None and again["attempts"] == 0

            listed = client.get("/v1/jobs", params={"status": "succeeded", "model_id": model["id"]})
            assert [j["id"] for j in listed.json()["items"]] == [job["id"]]

            report = client.get(f"/v1/jobs/{job['id']}/report").json()["report"]
            artifact = client.get(f"/v1/jobs/{job['id']}/artifact")
            assert artifact.status_code == 200
            assert hashlib.sha256(artifact.content).hexdigest() == job["artifact_sha256"]

        original, compressed = report["original"], report["compressed"]
        assert compressed["model_bytes"] * 3 < original["model_bytes"]
        assert original["parameters"] == pytest.approx(compressed["parameters"], rel=0.01)
        for side in (original, compressed):
            assert 0 < side["latency_p50_ms"] <= side["latency_p95_ms"]
        assert report["fidelity"]["cosine_min"] >= 0.98
        assert report["fidelity"]["max_abs_error"] > 0  # int8 really changed the numbers
        assert report["artifact"]["bytes"] == len(artifact.content)

        self._artifact_runs_in_onnxruntime(artifact.content, minilm_dir, tmp_path)

    @staticmethod
    def _artifact_runs_in_onnxruntime(content: bytes, minilm_dir: Path, tmp_path: Path) -> None:
        import onnx
        import onnxruntime as ort
        import torch
        from transformers import AutoModel, AutoTokenizer

        folder = unpack_artifact(content, tmp_path / "artifact")
        graph = onnx.load(str(folder / "model.onnx")).graph
        assert any(n.op_type in {"MatMulInteger", "DynamicQuantizeMatMul"} for n in graph.node)

        tokenizer = AutoTokenizer.from_pretrained(str(folder))
        enc = tokenizer(HELD_OUT, padding=True, return_tensors="np")
        session = ort.InferenceSession(str(folder / "model.onnx"))
        feed = {i.name: enc[i.name].astype(np.int64) for i in session.get_inputs()}
        ours = session.run(None, feed)[0]

        reference = AutoModel.from_pretrained(str(minilm_dir)).eval()
        with torch.no_grad():
            ref = reference(**{k: torch.from_numpy(v) for k, v in enc.items()}).last_hidden_state
        cos = cosine_rows(
            mean_pool(ours, enc["attention_mask"]), mean_pool(ref.numpy(), enc["attention_mask"])
        )
        assert cos.min() >= 0.98, cos


class TestHuggingFaceArtifact:
    def test_fp16_stays_a_transformers_model_with_an_onnx_copy(
        self, stack: Stack, minilm_targz: bytes, minilm_dir: Path, tmp_path: Path
    ) -> None:
        import onnxruntime as ort
        import torch
        from transformers import AutoModel, AutoTokenizer

        with stack.client() as client:
            model = upload_ready(client, minilm_targz, "minilm.tar.gz")
            body = {
                "model_id": model["id"],
                "recipe": {"steps": [{"technique": "quantization", "scheme": "fp16"}]},
                "target": {"runtime": "torch", "export_onnx": True},
            }
            submitted = client.post("/v1/jobs", json=body)
            assert submitted.status_code == 202, submitted.text
            job = wait_for_job(client, submitted.json()["id"], stack=stack)
            assert job["status"] == "succeeded", f"{job}\n{stack.logs()}"
            assert job["artifact_format"] == "huggingface"
            content = client.get(f"/v1/jobs/{job['id']}/artifact").content
        folder = unpack_artifact(content, tmp_path / "artifact")

        tokenizer = AutoTokenizer.from_pretrained(str(folder))
        enc = tokenizer(HELD_OUT, padding=True, return_tensors="pt")
        half = AutoModel.from_pretrained(str(folder)).eval()
        assert half.dtype == torch.float16
        reference = AutoModel.from_pretrained(str(minilm_dir)).eval()
        with torch.no_grad():
            ours = half(**enc).last_hidden_state.float().numpy()
            ref = reference(**enc).last_hidden_state.numpy()
        mask = enc["attention_mask"].numpy()
        assert cosine_rows(mean_pool(ours, mask), mean_pool(ref, mask)).min() >= 0.999

        session = ort.InferenceSession(str(folder / "model.onnx"))
        feed = {i.name: enc[i.name].numpy() for i in session.get_inputs()}
        onnx_out = session.run(None, feed)[0]
        assert cosine_rows(mean_pool(onnx_out, mask), mean_pool(ref, mask)).min() >= 0.999
