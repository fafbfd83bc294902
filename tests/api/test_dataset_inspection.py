"""Datasets are judged by their headers at the door and inspected in a worker, like models.

The upload request streams the file to storage, reads tensor headers (never the arrays) and the
first JSONL row, and answers ``pending``; an inspector worker reads the rest and decides
``ready`` or ``rejected``. A job naming a dataset that is not ready is refused (409 while it is
being inspected, 422 once rejected). On a live stack with small row and field caps.
"""

from __future__ import annotations

import io
import json
import struct
import time
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest

from tests.api.test_job_behaviour import tiny_onnx
from tests.fixtures.helpers import (
    assert_problem,
    npz_bytes,
    row_count,
    upload_ready,
    wait_for_dataset,
)
from tests.fixtures.stack import Stack, running_stack

MAX_ROWS = 1000
MAX_FIELDS = 8


@pytest.fixture(scope="module", params=["scaleout"])  # one kind: CI time; e2e covers both
def capped(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Stack]:
    """An API with an inspector worker (no compute pool: jobs stay queued), small dataset caps."""
    tmp = tmp_path_factory.mktemp(f"datasets-{request.param}")
    with running_stack(
        request.param,
        tmp,
        worker=False,
        MODELPRESS_DATASET_MAX_ROWS=str(MAX_ROWS),
        MODELPRESS_DATASET_MAX_FIELDS=str(MAX_FIELDS),
    ) as running:
        yield running


def post(stack: Stack, content: bytes | Any, name: str = "data.npz") -> httpx.Response:
    with stack.client() as client:
        return client.post("/v1/datasets", files={"file": (name, content)}, timeout=300)


def npz_declaring(shape: tuple[int, ...], descr: str = "<f8", payload: bytes = b"") -> bytes:
    """An .npz whose one member's header declares ``shape``, followed by ``payload`` only."""
    member = io.BytesIO()
    header = {"descr": descr, "fortran_order": False, "shape": shape}
    np.lib.format.write_array_header_1_0(member, header)  # type: ignore[no-untyped-call]
    member.write(payload)
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("x.npy", member.getvalue())
    return buf.getvalue()


def safetensors_bytes(tensors: dict[str, dict[str, Any]], data: bytes) -> bytes:
    header = json.dumps(tensors).encode()
    return struct.pack("<Q", len(header)) + header + data


def jsonl(rows: list[dict[str, Any]]) -> bytes:
    return "".join(json.dumps(r) + "\n" for r in rows).encode()


def pending_then(stack: Stack, content: bytes, name: str) -> dict[str, Any]:
    """Upload; the answer is pending with no inspection yet; return the worker's verdict."""
    response = post(stack, content, name)
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["status"] == "pending" and body["inspection"] == {}, body
    with stack.client() as client:
        return wait_for_dataset(client, body["id"], timeout=120)


def vm_kib(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise AssertionError(f"no {field} for pid {pid}")


class TestLargeJsonl:
    def test_upload_does_not_parse_the_file_in_the_api(self, capped: Stack, tmp_path: Path) -> None:
        """Today's API parsed every row in the request: a 160 MB JSONL grew it by 635 MB."""
        big = tmp_path / "big.jsonl"
        line = (json.dumps({"text": "a short sentence to calibrate on " * 3}) + "\n").encode()
        with big.open("wb") as fh:
            fh.write(line * (100 * 1024**2 // len(line)))
        pid = capped.procs["api"].pid
        peak_before = vm_kib(pid, "VmHWM")
        started = time.monotonic()
        with big.open("rb") as fh:
            response = post(capped, fh, "big.jsonl")
        took = time.monotonic() - started
        growth_mib = (vm_kib(pid, "VmHWM") - peak_before) / 1024
        assert growth_mib < 48, f"the API's peak memory grew {growth_mib:.0f} MiB"
        assert took < 20, f"the upload request took {took:.1f} s"
        assert response.status_code == 201, response.text
        assert response.json()["status"] == "pending"
        with capped.client() as client:
            verdict = wait_for_dataset(client, response.json()["id"], timeout=300)
        assert verdict["status"] == "rejected"  # over this stack's row cap: judged by the worker
        assert f"more than {MAX_ROWS} rows" in verdict["rejection_reason"]


class TestRefusedAtTheDoor:
    """What the headers show is refused with 422 in the request; nothing is kept."""

    @pytest.mark.parametrize(
        ("content", "name", "needle"),
        [
            (
                npz_bytes(a=np.zeros((4, 16), dtype=[("a", "<f4")])),
                "structured.npz",
                "only bool, integer and float",
            ),
            (npz_bytes(x=np.array([1 + 2j, 3j])), "complex.npz", "only bool, integer and float"),
            (npz_bytes(x=np.array([{"a": 1}], dtype=object)), "object.npz", "dtype object"),
            (npz_declaring((2**40,)), "huge-shape.npz", "holds 0 bytes"),
            (npz_declaring((4, 4), payload=b"\0" * 64), "short.npz", "holds 64 bytes"),
            (
                npz_bytes(**{f"a{i}": np.ones((2, 2)) for i in range(MAX_FIELDS + 1)}),
                "wide.npz",
                f"more than {MAX_FIELDS} arrays",
            ),
            (npz_bytes(x=np.ones((MAX_ROWS + 1, 2))), "long.npz", f"more than {MAX_ROWS} rows"),
            (npz_bytes(x=np.float32(3.0)), "scalar.npz", "first dimension"),
            (
                safetensors_bytes(
                    {"x": {"dtype": "F32", "shape": [2**40, 4], "data_offsets": [0, 16]}},
                    b"\0" * 16,
                ),
                "huge.safetensors",
                "holds 16 bytes",
            ),
            (
                safetensors_bytes(
                    {"x": {"dtype": "BF16", "shape": [2, 2], "data_offsets": [0, 8]}}, b"\0" * 8
                ),
                "bf16.safetensors",
                "not bfloat16",
            ),
            (b'{"text": "' + b"a" * (1024 * 1024 + 10), "no-newline.jsonl", "longer than"),
            (b'{"text": 3}\n', "bad.jsonl", '"text"'),
        ],
        ids=[
            "structured-dtype", "complex-dtype", "object-dtype", "shape-2e40", "short-data",
            "too-many-arrays", "too-many-rows", "scalar", "safetensors-shape", "bfloat16",
            "jsonl-line-too-long", "jsonl-first-row",
        ],
    )  # fmt: skip
    def test_refused(self, capped: Stack, content: bytes, name: str, needle: str) -> None:
        before = row_count(capped, "datasets")
        body = assert_problem(post(capped, content, name), 422)
        assert needle in str(body["detail"]), body
        assert row_count(capped, "datasets") == before


class TestInspectedByTheWorker:
    def test_jsonl_ready_after_inspection(self, capped: Stack) -> None:
        rows = [{"text": f"sentence {i}", "label": i % 2} for i in range(5)]
        verdict = pending_then(capped, jsonl(rows), "d.jsonl")
        assert verdict["status"] == "ready", verdict
        assert verdict["rejection_reason"] is None
        assert verdict["inspection"] == {
            "format": "jsonl",
            "samples": 5,
            "has_labels": True,
            "tensors": {},
        }

    def test_npz_ready_with_its_shapes(self, capped: Stack) -> None:
        ids = np.ones((5, 12), dtype=np.int64)
        verdict = pending_then(capped, npz_bytes(input_ids=ids, labels=np.arange(5)), "d.npz")
        assert verdict["status"] == "ready", verdict
        assert verdict["inspection"]["tensors"]["input_ids"] == {"shape": [5, 12], "dtype": "int64"}

    @pytest.mark.parametrize(
        ("rows", "needle"),
        [
            ([{"text": "a"}, {"text": "b"}, {"text": 3}], 'JSONL line 3 needs a string "text"'),
            ([{"text": "a"}] * (MAX_ROWS + 1), f"more than {MAX_ROWS} rows"),
            (
                [{"text": "a"}, {"text": "b", **{f"k{i}": i for i in range(MAX_FIELDS)}}],
                f"JSONL line 2 has more than {MAX_FIELDS} fields",
            ),
            ([{"text": "a", "label": 1}, {"text": "b"}], "every JSONL row has a label or none"),
        ],
        ids=["bad-row", "too-many-rows", "too-many-fields", "ragged-labels"],
    )
    def test_jsonl_rejected_with_the_reason(
        self, capped: Stack, rows: list[dict[str, Any]], needle: str
    ) -> None:
        verdict = pending_then(capped, jsonl(rows), "d.jsonl")
        assert verdict["status"] == "rejected", verdict
        assert needle in verdict["rejection_reason"], verdict
        assert not (capped.data_dir / "storage" / "datasets" / verdict["id"]).exists()


class TestJobsNeedReadyDatasets:
    def test_pending_is_409_rejected_is_422_ready_is_accepted(self, capped: Stack) -> None:
        steps = [{"technique": "quantization", "scheme": "int8_dynamic"}]
        with capped.client() as client:
            model = upload_ready(client, tiny_onnx(), "tiny.onnx")
            capped.stop("inspector")  # nobody inspects: the dataset stays pending
            try:
                created = client.post(
                    "/v1/datasets",
                    files={"file": ("eval.npz", npz_bytes(input=np.ones((4, 64), np.float32)))},
                )
                assert created.status_code == 201, created.text
                dataset_id = created.json()["id"]
                body = {"model_id": model["id"], "recipe": {"steps": steps}}
                pending = client.post("/v1/jobs", json={**body, "data": {"eval": dataset_id}})
                problem = assert_problem(pending, 409)
                assert "still being inspected" in problem["detail"]
                assert pending.headers["Retry-After"]
            finally:
                capped.start_worker("inspector", queues="inspect")
            assert wait_for_dataset(client, dataset_id, timeout=120)["status"] == "ready"
            accepted = client.post("/v1/jobs", json={**body, "data": {"eval": dataset_id}})
            assert accepted.status_code == 202, accepted.text
            rejected = pending_then(capped, jsonl([{"text": "a"}, {"text": 1}]), "r.jsonl")
            refused = client.post("/v1/jobs", json={**body, "data": {"eval": rejected["id"]}})
            assert "rejected at inspection" in assert_problem(refused, 422)["detail"]
            client.post(f"/v1/jobs/{accepted.json()['id']}/cancel")
