"""TorchScript and torch.export uploads on a deployment that opts in to executable formats.

They are opened only in the sandbox, converted to ONNX, and from then on are ordinary ONNX
models: a job compresses them and onnxruntime loads the artifact.
"""

from __future__ import annotations

import io
import pickle
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort
import pytest
import torch

from scripts.train_digits import accuracy, train
from tests.api.test_bad_input import assert_problem
from tests.engine.test_executable_formats import hostile_pt2
from tests.fixtures.helpers import (
    stored_files,
    unpack_artifact,
    upload,
    wait_for_dataset,
    wait_for_job,
    wait_for_model,
)
from tests.fixtures.stack import Stack, running_stack

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module", params=["scaleout"])  # one kind: CI time; e2e covers both
def opted_in(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Stack]:
    """Like the shared ``stack`` fixture, one per module and kind, with the opt-in set."""
    tmp = tmp_path_factory.mktemp(f"executable-{request.param}")
    with running_stack(request.param, tmp, MODELPRESS_ALLOW_EXECUTABLE_FORMATS="true") as stack:
        yield stack


@pytest.fixture(scope="module")
def cnn() -> tuple[torch.nn.Module, Any]:
    return train("cnn")


def _traced(model: torch.nn.Module, example: torch.Tensor) -> bytes:
    buf = io.BytesIO()
    torch.jit.save(torch.jit.trace(model, example), buf)
    return buf.getvalue()


def _exported(model: torch.nn.Module, example: torch.Tensor) -> bytes:
    batch = torch.export.Dim("batch", min=1, max=4096)
    program = torch.export.export(model, (example,), dynamic_shapes=({0: batch},))
    buf = io.BytesIO()
    torch.export.save(program, buf)
    return buf.getvalue()


def _npz(**arrays: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    return buf.getvalue()


@pytest.mark.parametrize("kind", ["torchscript", "torch_export"])
def test_converted_in_the_sandbox_then_compressed(
    opted_in: Stack, cnn: tuple[torch.nn.Module, Any], kind: str, tmp_path: Path
) -> None:
    model, split = cnn
    example = torch.from_numpy(split.x_eval[:8])
    content = _traced(model, example) if kind == "torchscript" else _exported(model, example)
    with opted_in.client() as client:
        created = upload(client, content, f"cnn.{'pt' if kind == 'torchscript' else 'pt2'}")
        assert created.status_code == 201, created.text
        assert created.json()["format"] == kind
        ready = wait_for_model(client, created.json()["id"], timeout=300)
        assert ready["status"] == "ready", f"{ready}\n{opted_in.logs()}"
        assert ready["format"] == "onnx"
        assert ready["inspection"]["converted_from"]["format"] == kind
        # Only the converted ONNX is kept: the executable original is gone from storage.
        kept = [p for p in stored_files(opted_in) if ready["id"] in str(p)]
        assert [p.suffix for p in kept] == [".onnx"], kept

        eval_ds = client.post(
            "/v1/datasets",
            files={"file": ("eval.npz", _npz(input=split.x_eval, labels=split.y_eval))},
        )
        assert eval_ds.status_code == 201, eval_ds.text
        assert wait_for_dataset(client, eval_ds.json()["id"])["status"] == "ready"
        body = {
            "model_id": ready["id"],
            "recipe": {"steps": [{"technique": "quantization", "scheme": "int8_dynamic"}]},
            "data": {"eval": eval_ds.json()["id"]},
        }
        submitted = client.post("/v1/jobs", json=body)
        assert submitted.status_code == 202, submitted.text
        job = wait_for_job(client, submitted.json()["id"], stack=opted_in)
        assert job["status"] == "succeeded", f"{job}\n{opted_in.logs()}"
        artifact = client.get(f"/v1/jobs/{job['id']}/artifact").content
    (path,) = sorted(unpack_artifact(artifact, tmp_path).rglob("*.onnx"))
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    logits = session.run(None, {name: split.x_eval})[0]
    int8_accuracy = float((logits.argmax(-1) == split.y_eval).mean())
    assert int8_accuracy >= accuracy(model, split.x_eval, split.y_eval) - 0.02


def test_hostile_loader_is_caged(opted_in: Stack, tmp_path: Path) -> None:
    """A .pt2 whose loading runs a pickle payload: the payload's write never lands."""
    marker = opted_in.data_dir / "PWNED"
    with opted_in.client() as client:
        created = upload(client, hostile_pt2(marker), "evil.pt2")
        assert created.status_code == 201, created.text
        model = wait_for_model(client, created.json()["id"], timeout=300)
        assert model["status"] == "rejected", model
        assert model["rejection_reason"]
        assert client.delete(f"/v1/models/{model['id']}").status_code == 204
    assert not marker.exists()
    assert not [p for p in stored_files(opted_in) if model["id"] in str(p)]


def test_plain_pickles_stay_refused(opted_in: Stack) -> None:
    with opted_in.client() as client:
        body = assert_problem(upload(client, pickle.dumps({"w": 1}), "model.pt"), 422)
    assert "never accepted" in str(body["detail"])
