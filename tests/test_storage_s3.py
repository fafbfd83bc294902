"""S3Storage against a real S3-compatible server (moto's server mode in a subprocess).

First the storage interface on its own, then the whole service (API + worker) configured for S3:
an upload and a job's artifact land in the bucket under their documented keys, the artifact
downloads through the API, and nothing is written to the local storage folder.
"""

from __future__ import annotations

import hashlib
import io
import os
import subprocess
import sys
import time
import uuid
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from app.settings import StorageSettings
from app.storage.s3 import S3Storage
from tests.fixtures.helpers import (
    digits_upload,
    stored_files,
    submit_job,
    unpack_artifact,
    upload_ready,
    wait_for_job,
)
from tests.fixtures.stack import free_port, running_stack

CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "test",
    "AWS_SECRET_ACCESS_KEY": "test",
    "AWS_DEFAULT_REGION": "us-east-1",
}


@pytest.fixture(scope="module")
def moto_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    log_path = tmp_path_factory.mktemp("moto") / "moto.log"
    with log_path.open("wb") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(f"{url}/moto-api/", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"moto server did not start:\n{log_path.read_text()}")
            time.sleep(0.2)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@pytest.fixture(autouse=True)
def _credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in CREDENTIALS.items():
        monkeypatch.setenv(name, value)


def s3_client(url: str) -> Any:
    import boto3

    return boto3.client(
        "s3",
        endpoint_url=url,
        region_name="us-east-1",
        aws_access_key_id="test",
        aws_secret_access_key="test",
    )


@pytest.fixture()
def bucket(moto_url: str) -> str:
    name = f"mp-{uuid.uuid4().hex[:12]}"
    s3_client(moto_url).create_bucket(Bucket=name)
    return name


def storage_for(url: str, bucket: str) -> S3Storage:
    return S3Storage(StorageSettings(storage_backend="s3", s3_bucket=bucket, s3_endpoint_url=url))


def keys_in(url: str, bucket: str) -> list[str]:
    listed = s3_client(url).list_objects_v2(Bucket=bucket)
    return sorted(o["Key"] for o in listed.get("Contents", []))


def s3_env(url: str, bucket: str) -> dict[str, str]:
    """A stack's variables for storing in ``bucket`` on the moto server."""
    return {
        "MODELPRESS_STORAGE_BACKEND": "s3",
        "MODELPRESS_S3_BUCKET": bucket,
        "MODELPRESS_S3_ENDPOINT_URL": url,
        **CREDENTIALS,
    }


def _write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


class TestS3Storage:
    def test_put_overwrites_by_key_and_reads_back(
        self, moto_url: str, bucket: str, tmp_path: Path
    ) -> None:
        storage = storage_for(moto_url, bucket)
        first = os.urandom(300_000)
        second = os.urandom(123_457)
        storage.put_file("artifacts/j1/artifact.zip", _write(tmp_path / "a", first))
        assert storage.exists("artifacts/j1/artifact.zip")
        assert storage.size("artifacts/j1/artifact.zip") == len(first)

        storage.put_file("artifacts/j1/artifact.zip", _write(tmp_path / "b", second))
        # Same key: replaced, not duplicated.
        assert keys_in(moto_url, bucket) == ["artifacts/j1/artifact.zip"]
        assert storage.size("artifacts/j1/artifact.zip") == len(second)

        dest_dir = tmp_path / "fetched"
        dest_dir.mkdir()
        storage.fetch_to("artifacts/j1/artifact.zip", dest_dir / "out.zip")
        assert (dest_dir / "out.zip").read_bytes() == second
        # The download's temporary file was renamed into place, nothing else is left.
        assert [p.name for p in dest_dir.iterdir()] == ["out.zip"]

        chunks = list(storage.iter_bytes("artifacts/j1/artifact.zip", chunk_size=10_000))
        assert b"".join(chunks) == second
        assert max(len(c) for c in chunks) <= 10_000
        assert len(chunks) >= len(second) // 10_000

    def test_copy_is_made_by_the_store_not_through_the_caller(
        self, moto_url: str, bucket: str, tmp_path: Path
    ) -> None:
        storage = storage_for(moto_url, bucket)
        data = os.urandom(200_000)
        storage.put_file("artifacts/child/attempt-1/artifact.zip", _write(tmp_path / "a", data))
        calls: list[str] = []
        storage.client.meta.events.register(
            "before-call.s3", lambda model, **_: calls.append(model.name)
        )
        storage.copy(
            "artifacts/child/attempt-1/artifact.zip", "artifacts/goal/attempt-1/artifact.zip"
        )
        # one server-side copy (plus s3transfer's size lookup): no GetObject, no upload
        assert "CopyObject" in calls and not {"GetObject", "PutObject", "UploadPart"} & set(calls)
        assert calls.count("CopyObject") == 1, calls
        chunks = storage.iter_bytes("artifacts/goal/attempt-1/artifact.zip")
        assert b"".join(chunks) == data

    def test_interrupted_multipart_put_keeps_the_old_object(
        self, moto_url: str, bucket: str, tmp_path: Path
    ) -> None:
        from boto3.s3.transfer import TransferConfig

        storage = storage_for(moto_url, bucket)
        old = os.urandom(1000)
        storage.put_file("k/obj", _write(tmp_path / "old", old))
        # One part at a time, so the source vanishes after part 1 reached S3 and before part 2
        # is read: s3transfer opens the file anew for each part.
        storage._transfer = TransferConfig(
            multipart_threshold=5 * 1024**2, multipart_chunksize=5 * 1024**2, max_concurrency=1
        )
        source = _write(tmp_path / "new", os.urandom(11 * 1024**2))
        sent: list[int] = []

        def part_stored(http_response: Any, **_: Any) -> None:
            sent.append(http_response.status_code)
            source.unlink(missing_ok=True)

        storage.client.meta.events.register("after-call.s3.UploadPart", part_stored)
        with pytest.raises(OSError):
            storage.put_file("k/obj", source)

        assert sent == [200], "the upload must fail after a part really reached the server"
        assert keys_in(moto_url, bucket) == ["k/obj"]
        assert storage.size("k/obj") == len(old)
        assert b"".join(storage.iter_bytes("k/obj")) == old
        # The sent part is not left billed in the bucket: the multipart upload was aborted.
        pending = s3_client(moto_url).list_multipart_uploads(Bucket=bucket)
        assert pending.get("Uploads", []) == []

    def test_multipart_upload_is_whole_and_leaves_no_parts(
        self, moto_url: str, bucket: str, tmp_path: Path
    ) -> None:
        from boto3.s3.transfer import TransferConfig

        storage = storage_for(moto_url, bucket)
        # S3's smallest part is 5 MiB; lower the threshold so 11 MiB goes in three parts.
        storage._transfer = TransferConfig(
            multipart_threshold=5 * 1024**2, multipart_chunksize=5 * 1024**2
        )
        data = os.urandom(11 * 1024**2 + 17)
        storage.put_file("big/object", _write(tmp_path / "big", data))
        storage.fetch_to("big/object", tmp_path / "big.out")
        digest = hashlib.sha256(data).hexdigest()
        assert hashlib.sha256((tmp_path / "big.out").read_bytes()).hexdigest() == digest
        assert storage.size("big/object") == len(data)
        pending = s3_client(moto_url).list_multipart_uploads(Bucket=bucket)
        assert pending.get("Uploads", []) == []

    def test_ranged_reads(self, moto_url: str, bucket: str, tmp_path: Path) -> None:
        storage = storage_for(moto_url, bucket)
        data = os.urandom(50_000)
        storage.put_file("a/obj", _write(tmp_path / "a", data))
        middle = list(storage.iter_bytes("a/obj", 1000, start=100, stop=4100))
        assert b"".join(middle) == data[100:4100]
        assert max(len(c) for c in middle) <= 1000
        assert b"".join(storage.iter_bytes("a/obj", start=49_990)) == data[49_990:]
        assert b"".join(storage.iter_bytes("a/obj", stop=1)) == data[:1]

    def test_download_url_serves_the_object_with_its_name_for_a_while(
        self, moto_url: str, bucket: str, tmp_path: Path
    ) -> None:
        storage = storage_for(moto_url, bucket)
        data = os.urandom(20_000)
        storage.put_file("artifacts/j/artifact.zip", _write(tmp_path / "a", data))
        url = storage.download_url(
            "artifacts/j/artifact.zip",
            filename="modelpress-j.zip",
            media_type="application/zip",
            expires_s=60,
        )
        assert url.startswith(moto_url)
        assert parse_qs(urlsplit(url).query)["X-Amz-Expires"] == ["60"]
        got = httpx.get(url)  # no credentials: the signature is the permission
        assert got.status_code == 200 and got.content == data
        assert got.headers["content-type"] == "application/zip"
        assert 'filename="modelpress-j.zip"' in got.headers["content-disposition"]
        ranged = httpx.get(url, headers={"Range": "bytes=5-14"})
        assert ranged.status_code == 206 and ranged.content == data[5:15]
        forged = url.replace("artifact.zip", "other.zip")
        assert httpx.get(forged).status_code == 403

    def test_exists_and_delete(self, moto_url: str, bucket: str, tmp_path: Path) -> None:
        storage = storage_for(moto_url, bucket)
        assert not storage.exists("models/nope/upload")
        storage.put_file("models/m1/upload", _write(tmp_path / "m", b"x" * 10))
        assert storage.exists("models/m1/upload")
        storage.delete("models/m1/upload")
        assert not storage.exists("models/m1/upload")
        storage.delete("models/m1/upload")  # idempotent, like LocalStorage
        assert keys_in(moto_url, bucket) == []

    def test_exists_raises_on_errors_other_than_not_found(
        self, moto_url: str, bucket: str, tmp_path: Path
    ) -> None:
        from botocore.exceptions import ClientError

        storage = storage_for(moto_url, bucket)
        storage.put_file("k/present", _write(tmp_path / "p", b"data"))
        # Turn on moto's IAM checks: the "test" key is unknown, so every call gets a 403.
        httpx.post(f"{moto_url}/moto-api/reset-auth", content=b"0").raise_for_status()
        try:
            with pytest.raises(ClientError) as caught:
                storage.exists("k/present")
            assert caught.value.response["Error"]["Code"] == "403"
            with pytest.raises(OSError, match="refused access"):
                storage.ping()
        finally:
            httpx.post(f"{moto_url}/moto-api/reset-auth", content=b"inf").raise_for_status()
        assert storage.exists("k/present")

    def test_ping(self, moto_url: str, bucket: str) -> None:
        storage_for(moto_url, bucket).ping()
        with pytest.raises(OSError, match="does not exist"):
            storage_for(moto_url, "mp-no-such-bucket").ping()
        closed = f"http://127.0.0.1:{free_port()}"
        started = time.monotonic()
        with pytest.raises(OSError, match="unreachable"):
            storage_for(closed, bucket).ping()
        assert time.monotonic() - started < 10, "a readiness probe must fail fast"

    @pytest.mark.parametrize("key", ["", "/abs", "a/../b", "a//b", "./a"])
    def test_rejects_keys_local_storage_would_reject(
        self, moto_url: str, bucket: str, tmp_path: Path, key: str
    ) -> None:
        with pytest.raises(ValueError, match="invalid storage key"):
            storage_for(moto_url, bucket).put_file(key, _write(tmp_path / "f", b"x"))


@pytest.mark.e2e
@pytest.mark.parametrize("kind", ["embedded", "scaleout"])
def test_service_on_s3(moto_url: str, bucket: str, tmp_path: Path, kind: str) -> None:
    from scripts.train_digits import train_and_save

    train_and_save("mlp", tmp_path / "mlp", epochs=3)
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name in ("architecture.json", "model.safetensors"):
            zf.write(tmp_path / "mlp" / name, name)

    with (
        running_stack(kind, tmp_path / "stack", **s3_env(moto_url, bucket)) as stack,
        stack.client() as client,
    ):
        ready = client.get("/readyz")
        assert ready.status_code == 200, ready.text
        assert ready.json()["checks"]["storage"] == "ok"

        model_id = upload_ready(client, buf.getvalue(), "digits-mlp.zip")["id"]
        assert keys_in(moto_url, bucket) == [f"models/{model_id}/upload"]

        steps = [{"technique": "quantization", "scheme": "int8_dynamic"}]
        submitted = client.post("/v1/jobs", json={"model_id": model_id, "recipe": {"steps": steps}})
        assert submitted.status_code == 202, submitted.text
        job = wait_for_job(client, submitted.json()["id"], stack=stack, timeout=120)
        assert job["status"] == "succeeded", f"{job}\n{stack.logs()}"

        archive = client.get(f"/v1/jobs/{job['id']}/report").json()["report"]["artifact"]["archive"]
        artifact_key = f"artifacts/{job['id']}/attempt-{job['attempts']}/artifact.{archive}"
        stored = keys_in(moto_url, bucket)
        # the original's measurement and export, kept for the tenant's later jobs (issue 24)
        baselines = [key for key in stored if key.startswith("baselines/")]
        assert sorted(k.rsplit(".", 1)[1] for k in baselines) == ["npz", "onnx"], stored
        assert stored == sorted([artifact_key, *baselines, f"models/{model_id}/upload"])
        downloaded = client.get(f"/v1/jobs/{job['id']}/artifact")
        assert downloaded.status_code == 200
        in_bucket = s3_client(moto_url).get_object(Bucket=bucket, Key=artifact_key)["Body"].read()
        assert downloaded.content == in_bucket
        assert downloaded.headers["x-checksum-sha256"] == hashlib.sha256(in_bucket).hexdigest()
        onnx_files = list(
            unpack_artifact(downloaded.content, tmp_path / "artifact").rglob("*.onnx")
        )
        assert len(onnx_files) == 1

        # S3 holds everything: the local storage folder was never written, no temp files remain.
        assert stored_files(stack) == []
        assert not (stack.data_dir / "storage").exists()

        # Deleting the model removes its upload, its jobs' artifacts and its baseline.
        assert client.delete(f"/v1/models/{model_id}").status_code == 204
        assert keys_in(moto_url, bucket) == []


@pytest.mark.e2e
def test_presigned_artifact_downloads(moto_url: str, bucket: str, tmp_path: Path) -> None:
    """MODELPRESS_S3_PRESIGNED_DOWNLOADS: the API redirects a download to the bucket, so the
    bytes never pass through it; HEAD and revalidation stay with the API."""
    with (
        running_stack(
            "embedded",
            tmp_path / "stack",
            **s3_env(moto_url, bucket),
            MODELPRESS_S3_PRESIGNED_DOWNLOADS="true",
            MODELPRESS_S3_PRESIGNED_EXPIRY_S="120",
        ) as stack,
        stack.client() as client,
    ):
        model_id = upload_ready(client, digits_upload(tmp_path / "mlp", epochs=1), "mlp.zip")["id"]
        steps = [{"technique": "quantization", "scheme": "int8_dynamic"}]
        job = wait_for_job(client, submit_job(client, model_id, steps), stack=stack, timeout=180)
        assert job["status"] == "succeeded", f"{job}\n{stack.logs()}"
        url = f"/v1/jobs/{job['id']}/artifact"

        redirected = client.get(url, follow_redirects=False)
        assert redirected.status_code == 307, redirected.text
        location = redirected.headers["location"]
        assert location.startswith(moto_url)
        assert parse_qs(urlsplit(location).query)["X-Amz-Expires"] == ["120"]
        fetched = httpx.get(location)  # no API key: the signature is the permission
        assert fetched.status_code == 200
        assert hashlib.sha256(fetched.content).hexdigest() == job["artifact_sha256"]
        assert f'filename="modelpress-{job["id"]}.' in fetched.headers["content-disposition"]
        ranged = httpx.get(location, headers={"Range": "bytes=0-9"})
        assert ranged.status_code == 206 and ranged.content == fetched.content[:10]

        head = client.head(url)
        assert head.status_code == 200
        assert head.headers["etag"] == f'"{job["artifact_sha256"]}"'
        cached = client.get(url, headers={"If-None-Match": head.headers["etag"]})
        assert cached.status_code == 304
