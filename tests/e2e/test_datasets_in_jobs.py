"""Uploaded datasets feeding jobs that really run: a calibration .npz for a digits model and
JSONL sentences for MiniLM, each beside an eval set the report must say it measured on."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import onnxruntime as ort
import pytest

from scripts.train_digits import digits_split
from tests.e2e.test_digits_jobs import _predicted
from tests.fixtures.floors import accuracy_floor
from tests.fixtures.helpers import (
    digits_upload,
    npz_bytes,
    submit_job,
    unpack_artifact,
    upload_dataset_ready,
    upload_ready,
    wait_for_job,
)
from tests.fixtures.stack import Stack

pytestmark = pytest.mark.e2e

CALIBRATION_ROWS = 120  # digits training images; the eval set is the 360 held-out ones
CALIBRATION_TEXTS = [
    "The train leaves the station at seven.",
    "She planted tomatoes along the fence.",
    "Interest rates rose for the third month.",
    "The museum opens a new wing in spring.",
    "He fixed the bicycle chain with pliers.",
    "Snow closed the mountain pass overnight.",
    "The committee postponed its decision.",
    "A cat slept on the warm windowsill.",
]
EVAL_TEXTS = [
    "Where is the closest bus stop?",
    "The violinist tuned her instrument.",
    "Quarterly earnings beat expectations.",
]


def upload_dataset(client: httpx.Client, filename: str, content: bytes) -> dict[str, Any]:
    """Upload and wait for the worker's inspection: a job only takes a ready dataset."""
    return upload_dataset_ready(client, content, filename)


def jsonl(texts: list[str]) -> bytes:
    return "".join(json.dumps({"text": t}) + "\n" for t in texts).encode()


def run(
    stack: Stack, client: httpx.Client, model_id: str, step: dict[str, Any], **extra: Any
) -> tuple[dict[str, Any], dict[str, Any]]:
    job_id = submit_job(client, model_id, [step], **extra)
    job = wait_for_job(client, job_id, stack=stack, timeout=600)
    assert job["status"] == "succeeded", f"{job}\n{stack.logs()}"
    report = client.get(f"/v1/jobs/{job_id}/report")
    assert report.status_code == 200, report.text
    return job, report.json()["report"]


def assert_measured_on(report: dict[str, Any], *, eval_rows: int, calibration_rows: int) -> None:
    """The figures come from the eval set; calibration, where the report names it, from ours."""
    measurement = report["measurement"]
    assert f"{eval_rows} supplied evaluation" in measurement["inputs"], measurement
    assert report["fidelity"]["samples"] == eval_rows, report["fidelity"]
    fidelity_inputs = measurement.get("fidelity_inputs")
    if fidelity_inputs is not None:
        assert fidelity_inputs["source"] == "eval_data", fidelity_inputs
        assert fidelity_inputs["rows"] == eval_rows, fidelity_inputs
    calibration_inputs = measurement.get("calibration_inputs")
    if calibration_inputs is not None:
        assert calibration_inputs["source"] == "calibration_data", calibration_inputs
        assert calibration_inputs["rows"] == calibration_rows, calibration_inputs


class TestNpzCalibration:
    def test_static_int8_calibrates_on_the_uploaded_images(
        self, stack: Stack, tmp_path: Path
    ) -> None:
        split = digits_split(image=False)
        with stack.client() as client:
            model = upload_ready(client, digits_upload(tmp_path / "mlp"), "digits.zip")
            calibration = upload_dataset(
                client, "calibration.npz", npz_bytes(input=split.x_train[:CALIBRATION_ROWS])
            )
            evaluation = upload_dataset(
                client, "eval.npz", npz_bytes(input=split.x_eval, labels=split.y_eval)
            )
            assert calibration["inspection"]["has_labels"] is False
            data = {"calibration": calibration["id"], "eval": evaluation["id"]}
            job, report = run(
                stack, client, model["id"],
                {"technique": "quantization", "scheme": "int8_static"}, data=data,
            )  # fmt: skip
            archive = client.get(f"/v1/jobs/{job['id']}/artifact").content
        assert job["data"] == data
        assert report["measurement"]["labelled"] is True
        assert_measured_on(report, eval_rows=len(split.y_eval), calibration_rows=CALIBRATION_ROWS)
        # Labels came with the eval set, so accuracy is measured on both models: the figures
        # are the ones we measure ourselves, the original's in torch, the artifact's in ORT.
        fidelity = report["fidelity"]
        original = _predicted(tmp_path / "mlp", split.x_eval)
        (path,) = sorted(unpack_artifact(archive, tmp_path / "artifact").rglob("*.onnx"))
        session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        feed = session.get_inputs()[0].name
        compressed = np.asarray(session.run(None, {feed: split.x_eval})[0]).argmax(-1)
        accuracy = float((compressed == split.y_eval).mean())
        assert fidelity["accuracy_original"] == pytest.approx((original == split.y_eval).mean())
        assert fidelity["accuracy_compressed"] == pytest.approx(accuracy)
        floor = accuracy_floor(original, compressed, split.y_eval)
        print(f"int8_static: accuracy {fidelity['accuracy_original']:.4f} -> {accuracy:.4f}")
        assert accuracy >= floor, (accuracy, floor, fidelity)


class TestJsonlText:
    def test_minilm_int8_calibrates_on_uploaded_sentences(
        self, stack: Stack, minilm_targz: bytes
    ) -> None:
        with stack.client() as client:
            model = upload_ready(client, minilm_targz, "minilm.tar.gz")
            calibration = upload_dataset(client, "calibration.jsonl", jsonl(CALIBRATION_TEXTS))
            evaluation = upload_dataset(client, "eval.jsonl", jsonl(EVAL_TEXTS))
            assert calibration["format"] == "jsonl"
            data = {"calibration": calibration["id"], "eval": evaluation["id"]}
            _, report = run(
                stack, client, model["id"],
                {"technique": "quantization", "scheme": "int8_dynamic"},
                data=data, target={"sequence_length": 32},
            )  # fmt: skip
        assert report["measurement"]["labelled"] is False
        # No labels: agreement of the embeddings, the bound tests/e2e/test_minilm_int8.py holds.
        print(f"minilm int8_dynamic: cosine min {report['fidelity']['cosine_min']:.4f}")
        assert report["fidelity"]["cosine_min"] >= 0.98, report["fidelity"]
        assert_measured_on(
            report, eval_rows=len(EVAL_TEXTS), calibration_rows=len(CALIBRATION_TEXTS)
        )
