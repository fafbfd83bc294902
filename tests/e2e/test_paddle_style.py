"""A Paddle-style detector-class CNN (opset 12, dynamic batch, height and width, depthwise
convs, squeeze-excitation gated by HardSigmoid, HardSwish, Resize by computed scales; see
tests/fixtures/paddle_style.py) through ``int8_static`` and through structured pruning plus
heal over the job API (issue 23). Each artifact is judged in onnxruntime on held-out digits,
beside ONNX Runtime's own ``quantize_static`` on the same calibration images."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import version_converter
from onnxruntime.quantization import QuantFormat, QuantType, quant_pre_process, quantize_static

from scripts.train_digits import digits_split
from tests.fixtures.floors import accuracy_floor
from tests.fixtures.helpers import (
    npz_bytes,
    unpack_artifact,
    upload_dataset_ready,
    upload_ready,
    wait_for_job,
)
from tests.fixtures.paddle_style import INPUT, OUTPUT, trained_paddle_style
from tests.fixtures.stack import Stack

pytestmark = pytest.mark.e2e
CALIBRATION_ROWS = 64


@pytest.fixture(scope="module")
def stack(scaleout_stack: Stack) -> Stack:
    return scaleout_stack


@pytest.fixture(scope="module")
def paddle(stack: Stack, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    net = trained_paddle_style()
    split = digits_split(image=True)
    path = tmp_path_factory.mktemp("paddle") / "det.onnx"
    path.write_bytes(net.onnx_bytes)
    calibration = split.x_train[-CALIBRATION_ROWS:]
    with stack.client() as client:
        model = upload_ready(client, net.onnx_bytes, "det.onnx")
        data = {
            role: upload_dataset_ready(client, npz_bytes(**arrays), f"{role}.npz")["id"]
            for role, arrays in (
                ("calibration", {INPUT: calibration}),
                ("eval", {INPUT: split.x_eval, "labels": split.y_eval}),
                ("train", {INPUT: split.x_train, "labels": split.y_train}),
            )
        }
    yield {"net": net, "path": path, "model": model, "data": data, "split": split}


def _classes(path: Path, x: np.ndarray) -> np.ndarray:
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return np.asarray(session.run([OUTPUT], {INPUT: x})[0].argmax(-1))


def _larger_images(x: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(np.repeat(np.repeat(x, 2, axis=2), 2, axis=3))


def _artifact(stack: Stack, body: dict[str, Any], dest: Path) -> tuple[Path, dict[str, Any]]:
    with stack.client() as client:
        submitted = client.post("/v1/jobs", json=body)
        assert submitted.status_code == 202, submitted.text
        job = wait_for_job(client, submitted.json()["id"], stack=stack)
        assert job["status"] == "succeeded", f"{job}\n{stack.logs()}"
        report = client.get(f"/v1/jobs/{job['id']}/report").json()["report"]
        content = client.get(f"/v1/jobs/{job['id']}/artifact").content
    (model,) = sorted(unpack_artifact(content, dest).rglob("*.onnx"))
    return model, report


class _Reader:
    def __init__(self, x: np.ndarray) -> None:
        self._batches = iter([{INPUT: x[i : i + 8]} for i in range(0, len(x), 8)])

    def get_next(self) -> dict[str, np.ndarray] | None:
        return next(self._batches, None)


def _peer(upload: Path, calibration: np.ndarray, work: Path) -> Path:
    """The one-liner as its documentation runs it: opset 13 (per-channel QDQ needs it),
    quant_pre_process, then QDQ per channel on the same calibration images."""
    opset13, prepared, out = work / "opset13.onnx", work / "pre.onnx", work / "peer.onnx"
    onnx.save(version_converter.convert_version(onnx.load(str(upload)), 13), str(opset13))
    # ORT's symbolic shape inference gives up on this graph's computed Resize scales.
    quant_pre_process(str(opset13), str(prepared), skip_symbolic_shape=True)
    quantize_static(
        str(prepared),
        str(out),
        _Reader(calibration),
        quant_format=QuantFormat.QDQ,
        per_channel=True,
        activation_type=QuantType.QUInt8,
        weight_type=QuantType.QInt8,
    )
    return out


def test_the_upload_keeps_its_dynamic_height_and_width(paddle: dict[str, Any]) -> None:
    inspection = paddle["model"]["inspection"]
    shape = inspection["inputs"][0]["shape"]
    assert shape[1] == 1 and all(isinstance(d, str) for d in (shape[0], shape[2], shape[3])), shape
    assert inspection["torch_conversion"]["convertible"] is not False, inspection


def test_int8_static_is_as_faithful_as_the_one_liner(
    stack: Stack, paddle: dict[str, Any], tmp_path: Path
) -> None:
    body = {
        "model_id": paddle["model"]["id"],
        "recipe": {"steps": [{"technique": "quantization", "scheme": "int8_static"}]},
        "data": {"calibration": paddle["data"]["calibration"], "eval": paddle["data"]["eval"]},
    }
    ours, report = _artifact(stack, body, tmp_path / "ours")
    split = paddle["split"]
    peer = _peer(paddle["path"], split.x_train[-CALIBRATION_ROWS:], tmp_path)
    original = paddle["net"].predicted
    agreement = {
        name: float((_classes(path, split.x_eval) == original).mean())
        for name, path in (("ours", ours), ("peer", peer))
    }
    sizes = {"ours": ours.stat().st_size, "peer": peer.stat().st_size}
    print(f"paddle-style int8_static: agreement {agreement}, bytes {sizes}")
    # Within one held-out row of the peer: the step times QDQ against QOperator and keeps the
    # faster, and the two round differently, so a busy machine can flip one row (CI saw 358
    # against 359 of 360 rows).
    assert agreement["ours"] >= agreement["peer"] - 1.5 / len(split.x_eval), agreement
    assert agreement["ours"] >= 0.99, agreement
    # The step keeps the faster of QDQ and QOperator, the smaller where their p50s tie: 21.9 KB
    # in QOperator form; in QDQ the same Q/DQ pairs as the peer's (Relu and Clip folded alike).
    assert sizes["ours"] <= 1.01 * sizes["peer"], sizes
    assert report["steps"][0]["graph_preparation"]["opset"]["upload"] == 12
    # Still the upload's contract: names, and any height and width the network takes.
    assert _classes(ours, _larger_images(split.x_eval[:8])).shape == (8,)


def test_structured_pruning_and_heal_keep_accuracy_and_dynamic_shapes(
    stack: Stack, paddle: dict[str, Any], tmp_path: Path
) -> None:
    steps = [
        {"technique": "structured_pruning", "amount": 0.25},
        {"technique": "distillation", "student": "current", "epochs": 8, "lr": 2e-3},
    ]
    body = {
        "model_id": paddle["model"]["id"],
        "recipe": {"steps": steps},
        "data": {"train": paddle["data"]["train"], "eval": paddle["data"]["eval"]},
    }
    pruned, report = _artifact(stack, body, tmp_path / "pruned")
    session = ort.InferenceSession(str(pruned), providers=["CPUExecutionProvider"])
    (declared,) = [i.shape for i in session.get_inputs()]
    assert all(isinstance(d, str) for d in (declared[0], declared[2], declared[3])), declared
    split = paddle["split"]
    predicted = _classes(pruned, split.x_eval)
    accuracy = float((predicted == split.y_eval).mean())
    floor = accuracy_floor(paddle["net"].predicted, predicted, split.y_eval)
    print(f"paddle-style prune + heal: {paddle['net'].accuracy:.4f} -> {accuracy:.4f} ({floor})")
    assert accuracy >= floor, (accuracy, floor)
    assert report["compressed"]["parameters"] < 0.8 * report["original"]["parameters"]
    assert _classes(pruned, _larger_images(split.x_eval[:8])).shape == (8,)
