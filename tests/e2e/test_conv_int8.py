"""int8_static on a Conv-only ONNX upload through the job API: calibration and evaluation
datasets uploaded as a user would, the artifact downloaded and run in onnxruntime here."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest

from scripts.conv_digits import INPUT, export, train
from tests.fixtures.helpers import unpack_artifact, upload_ready, wait_for_dataset, wait_for_job
from tests.fixtures.stack import Stack


@pytest.fixture(scope="module")
def stack(scaleout_stack: Stack) -> Stack:
    """One kind: CI time; the digits and dataset e2e modules run both."""
    return scaleout_stack


pytestmark = pytest.mark.e2e


def _npz(**arrays: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    return buf.getvalue()


def test_conv_only_int8_static_job(stack: Stack, tmp_path: Path) -> None:
    trained = train("convonly")
    upload = export(trained.model, trained.x_eval, tmp_path / "convonly.onnx")
    with stack.client() as client:
        model = upload_ready(client, upload.read_bytes(), "convonly.onnx")
        calibration = client.post(
            "/v1/datasets", files={"file": ("cal.npz", _npz(**{INPUT: trained.x_train[:160]}))}
        )
        held_out = client.post(
            "/v1/datasets",
            files={"file": ("eval.npz", _npz(**{INPUT: trained.x_eval, "labels": trained.y_eval}))},
        )
        assert calibration.status_code == 201, calibration.text
        assert wait_for_dataset(client, calibration.json()["id"])["status"] == "ready"
        assert held_out.status_code == 201, held_out.text
        assert wait_for_dataset(client, held_out.json()["id"])["status"] == "ready"
        # Weight-only schemes have no conv kernel in ORT: refused at submission, saying why.
        refused = client.post(
            "/v1/jobs",
            json={
                "model_id": model["id"],
                "recipe": {"steps": [{"technique": "quantization", "scheme": "int4_weight_only"}]},
            },
        )
        assert refused.status_code == 422, refused.text
        assert refused.headers["content-type"].startswith("application/problem+json")
        assert "convolution" in refused.text and "fp16" in refused.text
        body = {
            "model_id": model["id"],
            "recipe": {"steps": [{"technique": "quantization", "scheme": "int8_static"}]},
            "data": {"calibration": calibration.json()["id"], "eval": held_out.json()["id"]},
        }
        submitted = client.post("/v1/jobs", json=body)
        assert submitted.status_code == 202, submitted.text
        job = wait_for_job(client, submitted.json()["id"], stack=stack)
        assert job["status"] == "succeeded", f"{job}\n{stack.logs()}"
        report = client.get(f"/v1/jobs/{job['id']}/report").json()["report"]
        content = client.get(f"/v1/jobs/{job['id']}/artifact").content
    (path,) = sorted(unpack_artifact(content, tmp_path / "artifact").rglob("*.onnx"))
    graph = onnx.load(str(path)).graph
    producers = {o: n.op_type for n in graph.node for o in n.output}
    int8_convs = sum(1 for n in graph.node if n.op_type == "QLinearConv") + sum(
        1
        for n in graph.node
        if n.op_type == "Conv" and producers.get(n.input[1]) == "DequantizeLinear"
    )
    convs = sum(1 for n in onnx.load(str(upload)).graph.node if n.op_type == "Conv")
    (step,) = report["steps"]
    kept = step["layers_kept_in_float"]
    assert int8_convs >= convs - len(kept) > 0, step
    for name, why in kept.items():
        assert "relative output error" in why or why == "excluded by the recipe", name
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    ref = ort.InferenceSession(str(upload), providers=["CPUExecutionProvider"])
    got = session.run(None, {INPUT: trained.x_eval})[0].argmax(-1)
    want = ref.run(None, {INPUT: trained.x_eval})[0].argmax(-1)
    bound = 0.98
    assert float((got == want).mean()) >= bound
    assert report["fidelity"]["top1_agreement"] >= bound
    assert step["held_out_fidelity"]["met"] is True
