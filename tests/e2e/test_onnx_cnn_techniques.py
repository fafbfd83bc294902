"""An ONNX residual CNN (BatchNorm, exported with a fixed batch of 1) through the torch-stage
techniques over the job API; the artifact is judged in onnxruntime, not with modelpress.

A graph with an op onnx2torch cannot convert is accepted, its inspection names the op, a
torch-stage job on it is a 422 naming the op, and quantization still runs on it. Library
architecture references (torchvision) are accepted or rejected at inspection.
"""

from __future__ import annotations

import io
import json
import warnings
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch
import torchvision
from onnx import TensorProto, helper, numpy_helper
from safetensors.torch import save

from scripts.train_digits import digits_split
from tests.engine.test_onnx_to_torch import INPUT, OUTPUT, ResidualCNN
from tests.fixtures.floors import accuracy_floor
from tests.fixtures.helpers import (
    assert_problem,
    npz_bytes,
    unpack_artifact,
    upload,
    upload_ready,
    wait_for_dataset,
    wait_for_job,
    wait_for_model,
)
from tests.fixtures.stack import Stack


@pytest.fixture(scope="module")
def stack(scaleout_stack: Stack) -> Stack:
    """One kind: CI time; the digits and dataset e2e modules run both."""
    return scaleout_stack


pytestmark = pytest.mark.e2e


def _trained_cnn_onnx() -> tuple[bytes, np.ndarray]:
    """A residual CNN trained briefly on digits, exported without dynamic axes (batch 1), and
    its predicted classes on the held-out rows."""
    split = digits_split(image=True)
    torch.manual_seed(0)
    model = ResidualCNN(width=16)
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    x, y = torch.from_numpy(split.x_train), torch.from_numpy(split.y_train)
    for _epoch in range(6):
        order = torch.randperm(len(x))
        for start in range(0, len(x), 64):
            idx = order[start : start + 64]
            opt.zero_grad()
            torch.nn.functional.cross_entropy(model(x[idx]), y[idx]).backward()
            opt.step()
    model.eval()
    with torch.no_grad():
        predicted = model(torch.from_numpy(split.x_eval)).argmax(-1).numpy()
    buf = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            model,
            (torch.zeros(1, 1, 8, 8),),
            buf,
            input_names=[INPUT],
            output_names=[OUTPUT],
            opset_version=13,
            do_constant_folding=False,
            dynamo=False,
        )
    return buf.getvalue(), predicted


def _unconvertible_weight() -> np.ndarray:
    return np.random.default_rng(0).standard_normal((64, 10)).astype(np.float32) / 8


def _shrink(h: np.ndarray, lambd: float = 0.1) -> np.ndarray:
    return np.where(h < -lambd, h + lambd, np.where(h > lambd, h - lambd, 0.0))


def _unconvertible_onnx() -> bytes:
    """MatMul then Shrink, an op onnx2torch has no converter for."""
    weight = _unconvertible_weight()
    graph = helper.make_graph(
        [
            helper.make_node("MatMul", ["x", "w"], ["h"]),
            helper.make_node("Shrink", ["h"], ["y"], lambd=0.1),
        ],
        "shrink",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 64])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", 10])],
        [numpy_helper.from_array(weight, "w")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    return model.SerializeToString()


@pytest.fixture(scope="module")
def cnn(stack: Stack) -> Iterator[dict[str, Any]]:
    content, predicted = _trained_cnn_onnx()
    split = digits_split(image=True)
    with stack.client() as client:
        model = upload_ready(client, content, "resnet-digits.onnx")
        ids = {}
        for role, x, y in (
            ("eval", split.x_eval, split.y_eval),
            ("train", split.x_train, split.y_train),
        ):
            created = client.post(
                "/v1/datasets",
                files={"file": (f"{role}.npz", npz_bytes(**{INPUT: x, "labels": y}))},
            )
            assert created.status_code == 201, created.text
            assert wait_for_dataset(client, created.json()["id"])["status"] == "ready"
            ids[role] = created.json()["id"]
    widths = _conv_widths(onnx.load_from_string(content))
    yield {
        "model": model,
        "accuracy": float((predicted == split.y_eval).mean()),
        "predicted": predicted,
        "split": split,
        "channels": sum(widths),
        "widest": max(widths),
        **ids,
    }


def _conv_widths(model: onnx.ModelProto) -> list[int]:
    graph = model.graph
    inits = {i.name: i for i in graph.initializer}
    return [int(inits[n.input[1]].dims[0]) for n in graph.node if n.op_type == "Conv"]


def _conv_channels(model: onnx.ModelProto) -> int:
    return sum(_conv_widths(model))


def _assert_within_margin(cnn: dict[str, Any], compressed: np.ndarray, what: str) -> None:
    split = cnn["split"]
    accuracy = float((compressed == split.y_eval).mean())
    floor = accuracy_floor(cnn["predicted"], compressed, split.y_eval)
    print(f"onnx cnn, {what}: accuracy {cnn['accuracy']:.4f} -> {accuracy:.4f}, floor {floor:.4f}")
    assert accuracy >= floor, (accuracy, floor, cnn["accuracy"])


def test_inspection_records_the_conversion(cnn: dict[str, Any]) -> None:
    found = cnn["model"]["inspection"]["torch_conversion"]
    assert found["convertible"] is True, found
    assert found["blocking_ops"] == []
    assert found["max_abs_diff"] < 1e-4
    assert cnn["model"]["inspection"]["inputs"][0]["shape"] == [1, 1, 8, 8]


def test_torch_stage_steps_on_the_onnx_cnn(
    stack: Stack, cnn: dict[str, Any], tmp_path: Path
) -> None:
    steps = [
        {"technique": "structured_pruning", "amount": 0.25},
        # Ranks from layers timed in the runtime (the default), no layer below 0.6 of its
        # energy: after three cuts, four healing epochs must still bring this small net back.
        {"technique": "low_rank", "min_energy": 0.6},
        {"technique": "pruning", "sparsity": 0.3},
        {"technique": "distillation", "student": "current", "epochs": 4, "lr": 1e-3},
    ]
    body = {
        "model_id": cnn["model"]["id"],
        "recipe": {"steps": steps},
        "target": {"runtime": "onnxruntime", "batch_size": 8},
        "data": {"eval": cnn["eval"], "train": cnn["train"]},
    }
    with stack.client() as client:
        submitted = client.post("/v1/jobs", json=body)
        assert submitted.status_code == 202, submitted.text
        job = wait_for_job(client, submitted.json()["id"], stack=stack)
        assert job["status"] == "succeeded", f"{job}\n{stack.logs()}"
        report = client.get(f"/v1/jobs/{job['id']}/report").json()["report"]
        content = client.get(f"/v1/jobs/{job['id']}/artifact").content
    folder = unpack_artifact(content, tmp_path)
    (artifact,) = sorted(folder.rglob("*.onnx"))
    session = ort.InferenceSession(str(artifact), providers=["CPUExecutionProvider"])
    assert [i.name for i in session.get_inputs()] == [INPUT]
    assert [o.name for o in session.get_outputs()] == [OUTPUT]
    assert isinstance(session.get_inputs()[0].shape[0], str)  # the batch axis is dynamic again

    split = cnn["split"]
    logits = session.run(None, {INPUT: split.x_eval})[0]  # all rows at once
    accuracy = float((logits.argmax(-1) == split.y_eval).mean())
    assert report["fidelity"]["accuracy_compressed"] == pytest.approx(accuracy, abs=1e-6)
    assert report["fidelity"]["accuracy_original"] == pytest.approx(cnn["accuracy"], abs=1e-6)
    _assert_within_margin(cnn, logits.argmax(-1), "prune, factorize, sparsify, heal")
    upload = cnn["model"]["inspection"]
    assert upload["parameters"] > report["compressed"]["parameters"]
    assert [s["technique"] for s in report["steps"]] == [s["technique"] for s in steps]
    assert report["original"]["batch_size"] == report["compressed"]["batch_size"] == 1
    assert any("fixed batch of 1" in w for w in report["warnings"])
    assert job["warnings"] == report["warnings"]  # the job resource shows them too
    assert report["compressed"]["parameters"] < report["original"]["parameters"]
    # Channels removed: factorization adds narrow convs, but none is as wide as the original's
    # widest, which lost a quarter of its channels.
    assert 0 < max(_conv_widths(onnx.load(str(artifact)))) < cnn["widest"]
    low_rank = report["steps"][1]
    assert low_rank["rank_by"] == "speedup" and low_rank["batch_size"] == 8
    assert low_rank["energy_threshold"] == 0.6
    assert low_rank["checked_speedup"], low_rank  # the whole factorized model was timed
    assert set(low_rank["factorized"]) | set(low_rank["left_alone"]), low_rank


def test_derived_student_then_n_m_sparsity_on_the_onnx_cnn(
    stack: Stack, cnn: dict[str, Any], tmp_path: Path
) -> None:
    """The two torch-stage techniques the test above leaves out, over the job API."""
    steps = [
        {"technique": "distillation", "student": "derived", "width": 0.5, "epochs": 6, "lr": 1e-3},
        {"technique": "nm_sparsity", "n": 2, "m": 4},
        {"technique": "distillation", "student": "current", "epochs": 3, "lr": 1e-3},
    ]
    body = {
        "model_id": cnn["model"]["id"],
        "recipe": {"steps": steps},
        "data": {"eval": cnn["eval"], "train": cnn["train"]},
    }
    with stack.client() as client:
        submitted = client.post("/v1/jobs", json=body)
        assert submitted.status_code == 202, submitted.text
        job = wait_for_job(client, submitted.json()["id"], stack=stack)
        assert job["status"] == "succeeded", f"{job}\n{stack.logs()}"
        report = client.get(f"/v1/jobs/{job['id']}/report").json()["report"]
        content = client.get(f"/v1/jobs/{job['id']}/artifact").content
    (artifact,) = sorted(unpack_artifact(content, tmp_path).rglob("*.onnx"))
    session = ort.InferenceSession(str(artifact), providers=["CPUExecutionProvider"])
    split = cnn["split"]
    logits = session.run(None, {INPUT: split.x_eval})[0]
    accuracy = float((logits.argmax(-1) == split.y_eval).mean())
    assert report["fidelity"]["accuracy_compressed"] == pytest.approx(accuracy, abs=1e-6)
    _assert_within_margin(cnn, logits.argmax(-1), "derived student, 2:4, heal")
    # Half-width student: about a quarter of the conv parameters, a quarter or less once
    # half of what is left is zero.
    assert 0 < _conv_channels(onnx.load(str(artifact))) <= cnn["channels"] // 2 + 1
    graph = onnx.load(str(artifact)).graph
    inits = {i.name: numpy_helper.to_array(i) for i in graph.initializer}
    linear = []  # N:M acts on Linear layers (GEMMs), [out, in] however the graph stores them
    for node in graph.node:
        if node.op_type in ("Gemm", "MatMul") and node.input[1] in inits:
            w = inits[node.input[1]]
            trans_b = any(a.name == "transB" and a.i for a in node.attribute)
            linear.append(w if trans_b else w.T)  # MatMul and plain Gemm take [in, out]
    assert linear, [n.op_type for n in graph.node]
    for w in linear:  # 2:4 along the inputs: at most two non-zeros in each group of 4
        groups = w.reshape(w.shape[0], -1, 4)
        assert int((groups != 0).sum(axis=-1).max()) <= 2, w.shape


def test_unconvertible_graph_gets_quantization_but_not_torch_steps(
    stack: Stack, tmp_path: Path
) -> None:
    with stack.client() as client:
        model = upload_ready(client, _unconvertible_onnx(), "shrink.onnx")
        found = model["inspection"]["torch_conversion"]
        assert found["convertible"] is False
        assert found["blocking_ops"] == ["Shrink@17"]
        refused = client.post(
            "/v1/jobs",
            json={"model_id": model["id"], "recipe": {"steps": [{"technique": "low_rank"}]}},
        )
        problem = assert_problem(refused, 422)
        assert "Shrink@17" in problem["detail"]
        accepted = client.post(
            "/v1/jobs",
            json={
                "model_id": model["id"],
                "recipe": {"steps": [{"technique": "quantization", "scheme": "int8_dynamic"}]},
            },
        )
        assert accepted.status_code == 202, accepted.text
        job = wait_for_job(client, accepted.json()["id"], stack=stack)
        assert job["status"] == "succeeded", f"{job}\n{stack.logs()}"
        content = client.get(f"/v1/jobs/{job['id']}/artifact").content
    (artifact,) = sorted(unpack_artifact(content, tmp_path).rglob("*.onnx"))
    graph = onnx.load(str(artifact)).graph
    assert "Shrink" in {n.op_type for n in graph.node}  # the op nothing converts, kept as is
    inits = {i.name: numpy_helper.to_array(i) for i in graph.initializer}
    assert not [w for w in inits.values() if w.dtype == np.float32 and w.shape == (64, 10)]
    (stored,) = [w for w in inits.values() if w.dtype in (np.int8, np.uint8) and w.size == 640]
    assert stored.nbytes == 640  # a byte a weight, not four
    x = np.random.default_rng(1).standard_normal((64, 64)).astype(np.float32)
    session = ort.InferenceSession(str(artifact), providers=["CPUExecutionProvider"])
    got = session.run(None, {"x": x})[0]
    want = _shrink(x @ _unconvertible_weight())
    cosine = (got * want).sum(-1) / (np.linalg.norm(got, axis=-1) * np.linalg.norm(want, axis=-1))
    print(f"unconvertible int8_dynamic: cosine min {cosine.min():.5f}")
    assert cosine.min() >= 0.99, cosine.min()


def test_library_references_over_the_api(stack: Stack) -> None:
    """A torchvision reference whose weights fit is ready; an unknown name is rejected with
    where to find the valid names."""

    def archive(reference: dict[str, Any], module: torch.nn.Module) -> bytes:
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w") as zf:
            zf.writestr("architecture.json", json.dumps(reference))
            zf.writestr("model.safetensors", save(dict(module.state_dict())))
        return buf.getvalue()

    net = torchvision.models.mobilenet_v3_small(num_classes=4)
    good = {"library": "torchvision", "name": "mobilenet_v3_small", "args": {"num_classes": 4}}
    bad = {"library": "torchvision", "name": "mobilenet_v9"}
    with stack.client() as client:
        ready = upload_ready(client, archive(good, net), "mnv3.zip")
        assert ready["format"] == "architecture"
        assert ready["inspection"]["architecture"] == "torchvision/mobilenet_v3_small"
        sent = upload(client, archive(bad, net), "bad.zip")
        assert sent.status_code == 201, sent.text
        rejected = wait_for_model(client, sent.json()["id"])
    assert rejected["status"] == "rejected"
    assert "torchvision.models.list_models()" in rejected["rejection_reason"]
