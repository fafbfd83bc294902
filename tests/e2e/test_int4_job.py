"""int4_weight_only through the job API: the artifact is opened in onnxruntime, its MatMul
weights must really be 4-bit packed (MatMulNBits), and its held-out accuracy within the
paired margin of the original's."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch
from onnx import numpy_helper
from safetensors.torch import load_file

from compressor.zoo import ArchitectureSpec
from scripts.train_digits import ARCHITECTURES, digits_split
from tests.fixtures.floors import accuracy_floor
from tests.fixtures.helpers import (
    digits_upload,
    npz_bytes,
    unpack_artifact,
    upload_dataset_ready,
    upload_ready,
    wait_for_job,
)
from tests.fixtures.stack import Stack

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def stack(scaleout_stack: Stack) -> Stack:
    """One kind: the backend is not this module's subject."""
    return scaleout_stack


def _fp32_matmul_weights() -> int:
    args = ARCHITECTURES["mlp"]["args"]
    sizes = [args["in_features"], *args["hidden"], args["num_classes"]]
    return sum(a * b for a, b in zip(sizes, sizes[1:], strict=False))


def test_int4_weight_only_job(stack: Stack, tmp_path: Path) -> None:
    split = digits_split(image=False)
    content = digits_upload(tmp_path / "mlp", epochs=20)
    spec = ArchitectureSpec.model_validate(ARCHITECTURES["mlp"])
    original = spec.build()
    original.load_state_dict(load_file(str(tmp_path / "mlp" / "model.safetensors")))
    original.eval()
    with torch.no_grad():
        predicted = original(torch.from_numpy(split.x_eval)).argmax(-1).numpy()

    step = {"technique": "quantization", "scheme": "int4_weight_only", "group_size": 32}
    with stack.client() as client:
        model = upload_ready(client, content, "digits-mlp.zip")
        evaluation = upload_dataset_ready(
            client, npz_bytes(input=split.x_eval, labels=split.y_eval), "eval.npz"
        )
        body = {
            "model_id": model["id"],
            "recipe": {"steps": [step]},
            "data": {"eval": evaluation["id"]},
        }
        submitted = client.post("/v1/jobs", json=body)
        assert submitted.status_code == 202, submitted.text
        job = wait_for_job(client, submitted.json()["id"], stack=stack)
        assert job["status"] == "succeeded", f"{job}\n{stack.logs()}"
        report = client.get(f"/v1/jobs/{job['id']}/report").json()["report"]
        archive = client.get(f"/v1/jobs/{job['id']}/artifact").content

    (path,) = sorted(unpack_artifact(archive, tmp_path / "artifact").rglob("*.onnx"))
    graph = onnx.load(str(path)).graph
    packed = [n for n in graph.node if n.op_type == "MatMulNBits"]
    assert len(packed) == 3 == report["steps"][0]["matmuls_quantized"], [
        n.op_type for n in graph.node
    ]
    assert not [n for n in graph.node if n.op_type in ("MatMul", "Gemm")]
    inits = {i.name: numpy_helper.to_array(i) for i in graph.initializer}
    packed_bytes = 0
    for node in packed:
        attrs = {a.name: a.i for a in node.attribute}
        assert attrs["bits"] == 4 and attrs["block_size"] == 32, attrs
        weight = inits[node.input[1]]
        assert weight.dtype == np.uint8  # two 4-bit values a byte
        # [N, K blocks, block_size / 2]: half a byte a weight (K padded to whole blocks).
        assert weight.shape == (attrs["N"], -(-attrs["K"] // 32), 16), weight.shape
        packed_bytes += sum(inits[name].nbytes for name in node.input[1:] if name in inits)
    # Weights, scales and zero points together: more than 4x below the fp32 weights' bytes.
    assert packed_bytes < 4 * _fp32_matmul_weights() / 4, packed_bytes

    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    feed = session.get_inputs()[0].name
    compressed = session.run(None, {feed: split.x_eval})[0].argmax(-1)
    accuracy = float((compressed == split.y_eval).mean())
    fidelity = report["fidelity"]
    assert fidelity["accuracy_compressed"] == pytest.approx(accuracy, abs=1e-6)
    assert fidelity["top1_agreement"] == pytest.approx(float((compressed == predicted).mean()))
    floor = accuracy_floor(predicted, compressed, split.y_eval)
    print(
        f"int4: accuracy {fidelity['accuracy_original']:.4f} -> {accuracy:.4f}, floor {floor:.4f}"
    )
    assert accuracy >= floor, (accuracy, floor, fidelity)
