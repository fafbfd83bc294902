"""Bad input gets a clear 4xx problem response and leaves no file or row behind."""

from __future__ import annotations

import io
import pickle
import zipfile
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa

from tests.api.conftest import LIMIT
from tests.fixtures.helpers import row_count, stored_files, upload, wait_for_model, wait_until
from tests.fixtures.stack import Stack


def assert_problem(response: httpx.Response, status: int) -> dict[str, object]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    body = response.json()
    assert body["status"] == status
    assert body["type"].startswith("/problems/")
    assert isinstance(body["detail"], str) and body["detail"]
    return body


Leftovers = tuple[set[str], set[str], list[Path]]


def _ids(stack: Stack, table: str) -> set[str]:
    engine = sa.create_engine(stack.database_url)
    try:
        with engine.connect() as conn:
            return set(conn.execute(sa.text(f"SELECT id FROM {table}")).scalars())
    finally:
        engine.dispose()


def _inspecting(stack: Stack) -> bool:
    engine = sa.create_engine(stack.database_url)
    try:
        with engine.connect() as conn:
            undecided = sum(
                conn.execute(
                    sa.text(
                        f"SELECT count(*) FROM {table} WHERE status IN ('pending', 'inspecting')"
                    )
                ).scalar_one()
                for table in ("models", "datasets")
            )
    finally:
        engine.dispose()
    return bool(undecided) or any((stack.data_dir / "tmp").glob("inspect-*"))


def leftovers(stack: Stack) -> Leftovers:
    """Model and job rows and stored files: what a refused upload or job could leave behind.

    The stack is shared with other modules, so a test compares this before and after instead of
    expecting it empty. It is read once no upload is mid-inspection (the inspector's scratch
    files come and go), so two reads differ only by what the test did in between."""
    wait_until(lambda: not _inspecting(stack), 120, "uploads being inspected to be decided")
    return _ids(stack, "models"), _ids(stack, "jobs"), stored_files(stack)


def assert_nothing_left(stack: Stack, as_found: Leftovers) -> None:
    assert leftovers(stack) == as_found


def assert_rejected_at_inspection(stack: Stack, content: bytes, needle: str) -> None:
    """Checks that need the upload unpacked run in a worker: stored, then rejected and removed."""
    as_found = leftovers(stack)
    with stack.client() as client:
        created = upload(client, content)
        assert created.status_code == 201, created.text
        model = wait_for_model(client, created.json()["id"])
        assert model["status"] == "rejected", model
        assert needle in str(model["rejection_reason"]).lower(), model
        # The worker decides the row, then deletes the stored upload: moments apart.
        wait_until(lambda: stored_files(stack) == as_found[2], 30, "the rejected upload removed")
        recipe = {"steps": [{"technique": "quantization", "scheme": "int8_dynamic"}]}
        job = client.post("/v1/jobs", json={"model_id": model["id"], "recipe": recipe})
        assert "rejected" in str(assert_problem(job, 422)["detail"])
        assert client.delete(f"/v1/models/{model['id']}").status_code == 204
    assert_nothing_left(stack, as_found)


class _Payload:
    def __init__(self) -> None:
        self.written = False

    def __reduce__(self) -> tuple[object, tuple[str]]:
        return (print, ("unpickled!",))


def _zip(members: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return buf.getvalue()


class TestUploadRejected:
    """Refused at the door, from headers and archive indexes: 422, nothing stored."""

    @pytest.mark.parametrize(
        ("content", "needle"),
        [
            (b"", "empty"),
            (b"this is just some text, not a model" * 10, "unknown file format"),
            (_zip({"README.md": b"hello"}), "no model"),
            (_zip({"../escape/config.json": b"{}"}), "outside"),
            (_zip({"/abs/config.json": b"{}"}), "absolute"),
            (pickle.dumps(_Payload()), "never accepted"),
        ],
        ids=["empty", "unknown-format", "no-model", "traversal", "absolute", "raw-pickle"],
    )
    def test_rejected_with_422(self, api: Stack, content: bytes, needle: str) -> None:
        as_found = leftovers(api)
        with api.client() as client:
            body = assert_problem(upload(client, content), 422)
        assert needle in str(body["detail"]).lower()
        assert_nothing_left(api, as_found)

    @pytest.mark.parametrize(
        ("content", "needle"),
        [
            (_zip({"config.json": b"{not json"}), "config.json"),
            (_zip({"config.json": b'{"model_type": "bert"}'}), "safetensors"),
            (
                _zip(
                    {
                        "config.json": b'{"model_type": "bert"}',
                        "model.safetensors": b"\x10\x00garbage",
                    }
                ),
                "safetensors",
            ),
            (
                _zip({"config.json": b'{"model_type": "bert"}', "pytorch_model.bin": b"x" * 100}),
                "safetensors",
            ),
        ],
        ids=["bad-config", "no-weights", "bad-safetensors", "pickled-weights"],
    )
    def test_rejected_at_inspection(self, api: Stack, content: bytes, needle: str) -> None:
        assert_rejected_at_inspection(api, content, needle)

    def test_truncated_archive(self, api: Stack, minilm_zip: bytes) -> None:
        as_found = leftovers(api)
        with api.client() as client:
            body = assert_problem(upload(client, minilm_zip[: len(minilm_zip) // 2]), 422)
        assert "corrupt" in str(body["detail"]) or "truncated" in str(body["detail"])
        assert_nothing_left(api, as_found)

    def test_too_large_gets_413(self, api: Stack) -> None:
        as_found = leftovers(api)
        with api.client() as client:
            response = upload(client, b"\0" * (LIMIT + 1024 * 1024))
        assert_problem(response, 413)
        assert_nothing_left(api, as_found)

    def test_client_filename_never_becomes_a_path(self, api: Stack, minilm_targz: bytes) -> None:
        as_found = leftovers(api)
        with api.client() as client:
            response = upload(client, minilm_targz, "../../etc/evil.tar.gz")
            assert response.status_code == 201, response.text
            assert response.json()["filename"] == "evil.tar.gz"
            assert wait_for_model(client, response.json()["id"])["status"] == "ready"
            assert not (api.data_dir.parent / "etc").exists()
            assert client.delete(f"/v1/models/{response.json()['id']}").status_code == 204
        assert_nothing_left(api, as_found)


class TestJobRejected:
    @pytest.mark.parametrize(
        ("recipe", "target", "status", "needle"),
        [
            ({"steps": [{"technique": "alchemy"}]}, {}, 422, "technique"),
            ({"steps": [{"technique": "pruning", "sparsity": 1.5}]}, {}, 422, "sparsity"),
            ({"steps": []}, {}, 422, "steps"),
            (
                {"steps": [{"technique": "quantization", "scheme": "int8_dynamic", "bogus": 1}]},
                {},
                422,
                "bogus",
            ),
            (
                {"steps": [{"technique": "quantization", "scheme": "int8_dynamic"}]},
                {"runtime": "torch"},
                422,
                "onnxruntime",
            ),
            (
                {
                    "steps": [
                        {"technique": "quantization", "scheme": "int8_dynamic"},
                        {"technique": "pruning"},
                    ]
                },
                {},
                422,
                "last",
            ),
        ],
        ids=[
            "unknown-technique",
            "bad-sparsity",
            "no-steps",
            "extra-field",
            "wrong-runtime",
            "bad-order",
        ],
    )
    def test_invalid_recipe(
        self, api: Stack, model_id: str, recipe: dict, target: dict, status: int, needle: str
    ) -> None:
        jobs_before = row_count(api, "jobs")
        with api.client() as client:
            response = client.post(
                "/v1/jobs", json={"model_id": model_id, "recipe": recipe, "target": target}
            )
        body = assert_problem(response, status)
        assert needle in str(body).lower()
        assert row_count(api, "jobs") == jobs_before

    def test_missing_model(self, api: Stack) -> None:
        recipe = {"steps": [{"technique": "quantization", "scheme": "int8_dynamic"}]}
        jobs_before = row_count(api, "jobs")
        with api.client() as client:
            response = client.post("/v1/jobs", json={"model_id": "nope", "recipe": recipe})
        assert_problem(response, 404)
        assert row_count(api, "jobs") == jobs_before

    def test_malformed_json(self, api: Stack) -> None:
        with api.client() as client:
            response = client.post(
                "/v1/jobs", content=b"{not json", headers={"content-type": "application/json"}
            )
        assert_problem(response, 422)


class TestNotFound:
    @pytest.mark.parametrize(
        "path",
        [
            "/v1/jobs/missing",
            "/v1/jobs/missing/report",
            "/v1/jobs/missing/artifact",
            "/v1/models/missing",
            "/nope",
        ],
    )
    def test_problem_404(self, api: Stack, path: str) -> None:
        with api.client() as client:
            assert_problem(client.get(path), 404)
