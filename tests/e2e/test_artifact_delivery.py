"""Artifact downloads over a live stack: HEAD, byte ranges, ETag revalidation, and what the
archive holds beside the model (report.json, recipe.json)."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.fixtures.helpers import (
    assert_problem,
    digits_upload,
    submit_job,
    unpack_artifact,
    upload_ready,
    wait_for_job,
)
from tests.fixtures.stack import Stack


@pytest.fixture(scope="module")
def stack(scaleout_stack: Stack) -> Stack:
    return scaleout_stack


pytestmark = pytest.mark.e2e

STEPS = [{"technique": "quantization", "scheme": "int8_dynamic"}]


@pytest.fixture(scope="module")
def finished(
    stack: Stack, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[httpx.Client, dict[str, Any], bytes]]:
    """One cheap digits job, succeeded, with its whole artifact as a plain GET returns it."""
    content = digits_upload(tmp_path_factory.mktemp("digits"), epochs=1)
    with stack.client() as client:
        model_id = upload_ready(client, content, "digits-mlp.zip")["id"]
        job = wait_for_job(client, submit_job(client, model_id, STEPS), stack=stack, timeout=180)
        assert job["status"] == "succeeded", f"{job}\n{stack.logs()}"
        whole = client.get(f"/v1/jobs/{job['id']}/artifact")
        assert whole.status_code == 200, whole.text
        yield client, job, whole.content


def _url(job: dict[str, Any]) -> str:
    return f"/v1/jobs/{job['id']}/artifact"


class TestHead:
    def test_head_answers_the_get_headers_without_a_body(self, finished: Any) -> None:
        client, job, whole = finished
        head = client.head(_url(job))
        assert head.status_code == 200
        assert head.content == b""
        assert int(head.headers["content-length"]) == len(whole)
        assert head.headers["etag"] == f'"{job["artifact_sha256"]}"'
        assert head.headers["accept-ranges"] == "bytes"
        assert head.headers["x-checksum-sha256"] == hashlib.sha256(whole).hexdigest()
        assert head.headers["content-type"] in {"application/x-xz", "application/zip"}

    def test_head_of_an_unknown_job_is_404(self, finished: Any) -> None:
        client, _, _ = finished
        assert client.head("/v1/jobs/nope/artifact").status_code == 404


class TestRange:
    def test_a_range_returns_206_with_exactly_those_bytes(self, finished: Any) -> None:
        client, job, whole = finished
        part = client.get(_url(job), headers={"Range": "bytes=10-99"})
        assert part.status_code == 206, part.text
        assert part.content == whole[10:100]
        assert part.headers["content-range"] == f"bytes 10-99/{len(whole)}"
        assert int(part.headers["content-length"]) == 90
        assert part.headers["etag"] == f'"{job["artifact_sha256"]}"'

    def test_open_ended_and_suffix_ranges(self, finished: Any) -> None:
        client, job, whole = finished
        tail = client.get(_url(job), headers={"Range": "bytes=-100"})
        assert tail.status_code == 206 and tail.content == whole[-100:]
        rest = client.get(_url(job), headers={"Range": f"bytes={len(whole) - 7}-"})
        assert rest.status_code == 206 and rest.content == whole[-7:]
        beyond = client.get(_url(job), headers={"Range": f"bytes=5-{len(whole) * 2}"})
        assert beyond.status_code == 206 and beyond.content == whole[5:]

    def test_resuming_in_pieces_rebuilds_the_artifact(self, finished: Any) -> None:
        client, job, whole = finished
        pieces, start, step = [], 0, max(len(whole) // 3, 1)
        while start < len(whole):
            got = client.get(_url(job), headers={"Range": f"bytes={start}-{start + step - 1}"})
            assert got.status_code == 206
            pieces.append(got.content)
            start += len(got.content)
        assert hashlib.sha256(b"".join(pieces)).hexdigest() == job["artifact_sha256"]

    def test_unsatisfiable_range_is_416_problem(self, finished: Any) -> None:
        client, job, whole = finished
        for spec in (f"bytes={len(whole)}-", "bytes=-0"):
            refused = client.get(_url(job), headers={"Range": spec})
            body = assert_problem(refused, 416)
            assert refused.headers["content-range"] == f"bytes */{len(whole)}"
            assert str(len(whole)) in body["detail"]

    def test_ranges_it_does_not_serve_get_the_whole_artifact(self, finished: Any) -> None:
        client, job, whole = finished
        for spec in ("bytes=0-1,5-9", "lines=1-2", "bytes=9-3", "bytes=x-"):
            got = client.get(_url(job), headers={"Range": spec})
            assert got.status_code == 200, spec
            assert got.content == whole


class TestETag:
    def test_if_none_match_gets_304(self, finished: Any) -> None:
        client, job, _ = finished
        etag = client.head(_url(job)).headers["etag"]
        for header in (etag, f'"other", {etag}', f"W/{etag}", "*"):
            cached = client.get(_url(job), headers={"If-None-Match": header})
            assert cached.status_code == 304, header
            assert cached.content == b""
            assert cached.headers["etag"] == etag
        changed = client.get(_url(job), headers={"If-None-Match": '"stale"'})
        assert changed.status_code == 200

    def test_if_range_serves_the_range_only_while_the_etag_holds(self, finished: Any) -> None:
        client, job, whole = finished
        etag = f'"{job["artifact_sha256"]}"'
        same = client.get(_url(job), headers={"Range": "bytes=0-9", "If-Range": etag})
        assert same.status_code == 206 and same.content == whole[:10]
        stale = client.get(_url(job), headers={"Range": "bytes=0-9", "If-Range": '"stale"'})
        assert stale.status_code == 200 and stale.content == whole


class TestArchive:
    def test_report_and_recipe_travel_beside_the_model(self, finished: Any, tmp_path: Path) -> None:
        client, job, whole = finished
        folder = unpack_artifact(whole, tmp_path / "artifact")
        assert list(folder.rglob("*.onnx")), sorted(p.name for p in folder.iterdir())
        report = json.loads((folder / "report.json").read_text())
        served = client.get(f"/v1/jobs/{job['id']}/report").json()["report"]
        # The report describes the very archive downloaded (packed once, issue 24) ...
        assert served["artifact"]["sha256"] == job["artifact_sha256"]
        assert job["artifact_sha256"] == hashlib.sha256(whole).hexdigest()
        assert served["artifact"]["bytes"] == served["compressed"]["archive"]["bytes"] == len(whole)
        # ... and only the archive's own figures cannot be inside it.
        own = ("artifact", "archive_compression_ratio")
        assert {k: v for k, v in served.items() if k not in own} == {
            **{k: v for k, v in report.items() if k not in own},
            "compressed": {**report["compressed"], "archive": served["compressed"]["archive"]},
        }
        recipe = json.loads((folder / "recipe.json").read_text())
        assert recipe == job["recipe"]
        # The recipe feeds straight back into a new job.
        again = client.post("/v1/jobs", json={"model_id": job["model_id"], "recipe": recipe})
        assert again.status_code == 202, again.text
        client.post(f"/v1/jobs/{again.json()['id']}/cancel")


class TestDeclared:
    def test_the_spec_declares_ranges_revalidation_and_head(self) -> None:
        from scripts.dump_openapi import spec_json

        item = json.loads(spec_json())["paths"]["/v1/jobs/{job_id}/artifact"]
        get, head = item["get"]["responses"], item["head"]["responses"]
        assert {"200", "206", "304", "307", "404", "409", "416"} <= set(get)
        assert {"200", "206", "304", "416"} <= set(head)
        assert {"ETag", "Accept-Ranges", "X-Checksum-Sha256"} <= set(get["200"]["headers"])
        assert "Content-Range" in get["206"]["headers"] and "Content-Range" in get["416"]["headers"]
        params = {p["name"] for p in item["get"]["parameters"] if p["in"] == "header"}
        assert {"Range", "If-Range", "If-None-Match"} <= params
