"""Issue 12, items 1, 3 and 4: what one request may cost the API process in memory and CPU.

Each test measures the real uvicorn process from /proc, so a regression shows up as numbers.
"""

from __future__ import annotations

import os
import struct
import time
import zlib
from collections.abc import Iterator
from pathlib import Path

import httpx
import onnx
import pytest
from onnx import TensorProto, helper

from compressor.errors import InvalidModelError
from compressor.formats.archive import screen_upload
from tests.api.test_bad_input import assert_nothing_left, assert_problem, leftovers
from tests.fixtures.helpers import upload
from tests.fixtures.stack import Stack, running_stack

MiB = 1024**2
GiB = 1024**3
JSON_LIMIT = 64 * 1024


def _status_kib(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1])
    raise AssertionError(f"no {field} in /proc/{pid}/status")


class PeakMemory:
    """Growth of a process's peak RSS over a block: the kernel's high-water mark is reset first
    (clear_refs 5), so a transient allocation counts even when it is freed before we look."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.growth_bytes = 0

    def __enter__(self) -> PeakMemory:
        Path(f"/proc/{self.pid}/clear_refs").write_text("5")
        self.baseline_kib = _status_kib(self.pid, "VmRSS")
        return self

    def __exit__(self, *exc: object) -> None:
        self.growth_bytes = (_status_kib(self.pid, "VmHWM") - self.baseline_kib) * 1024


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def api_pid(stack: Stack) -> int:
    return stack.procs["api"].pid


def _zeros(size: int) -> Iterator[bytes]:
    chunk = bytes(MiB)
    for _ in range(size // MiB):
        yield chunk
    yield bytes(size % MiB)


def multipart_upload(
    client: httpx.Client, size: int, *, path: str = "/v1/models", timeout: float = 120
) -> httpx.Response:
    """POST a ``size``-byte file of zeros, generated while it is sent (never held in memory)."""
    boundary = "modelpress-hardening"
    head = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="big.bin"\r\n'
        "Content-Type: application/octet-stream\r\n\r\n"
    ).encode()
    tail = f"\r\n--{boundary}--\r\n".encode()

    def body() -> Iterator[bytes]:
        yield head
        yield from _zeros(size)
        yield tail

    headers = {
        "content-type": f"multipart/form-data; boundary={boundary}",
        "content-length": str(len(head) + size + len(tail)),
    }
    return client.post(path, content=body(), headers=headers, timeout=timeout)


def targz_bomb(declared: int = 2 * GiB) -> bytes:
    """A ~2 MB .tar.gz whose one member really holds ``declared`` zero bytes.

    Deflate output for a run of zeros repeats once the window is full, so the stream is built
    from one flushed block repeated instead of compressing 2 GiB here.
    """
    import tarfile

    info = tarfile.TarInfo("model.safetensors")
    info.size = declared
    header = info.tobuf(format=tarfile.GNU_FORMAT)
    zero = bytes(MiB)
    comp = zlib.compressobj(9, zlib.DEFLATED, -15)
    first = comp.compress(header + zero) + comp.flush(zlib.Z_FULL_FLUSH)
    steady = comp.compress(zero) + comp.flush(zlib.Z_FULL_FLUSH)
    assert steady == comp.compress(zero) + comp.flush(zlib.Z_FULL_FLUSH)
    tail = bytes(declared % MiB + 1024)  # the rest, then the end-of-archive blocks
    last = comp.compress(tail) + comp.flush()
    crc = zlib.crc32(header + zero)
    for _ in range(declared // MiB - 1):
        crc = zlib.crc32(zero, crc)
    crc = zlib.crc32(tail, crc)
    size = (len(header) + declared + len(tail)) & 0xFFFFFFFF
    gzip_header = b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x02\xff"
    body = first + steady * (declared // MiB - 1) + last
    return gzip_header + body + struct.pack("<II", crc, size)


def tiny_onnx() -> bytes:
    graph = helper.make_graph(
        [helper.make_node("Relu", ["x"], ["y"])],
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 2])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 2])],
    )
    return onnx.helper.make_model(graph).SerializeToString()


class TestJsonBodyLimit:
    """Item 1: a JSON route refuses a body over its small limit before reading it."""

    @staticmethod
    def _oversized_job(size: int) -> bytes:
        return b'{"model_id": "' + b"x" * size + b'", "recipe": {"steps": []}}'

    def test_declared_length_over_the_limit_gets_413(self, api: Stack) -> None:
        as_found = leftovers(api)
        with api.client() as client, PeakMemory(api_pid(api)) as peak:
            started = time.monotonic()
            response = client.post(
                "/v1/jobs",
                content=self._oversized_job(8 * MiB),
                headers={"content-type": "application/json"},
            )
            elapsed = time.monotonic() - started
        body = assert_problem(response, 413)
        assert str(JSON_LIMIT) in str(body["detail"])
        assert body["instance"] == "/v1/jobs"
        assert elapsed < 5
        assert peak.growth_bytes < 4 * MiB, peak.growth_bytes
        assert_nothing_left(api, as_found)

    def test_chunked_body_over_the_limit_gets_413(self, api: Stack) -> None:
        payload = self._oversized_job(2 * MiB)

        def chunks() -> Iterator[bytes]:  # no Content-Length: sent chunked
            for at in range(0, len(payload), 64 * 1024):
                yield payload[at : at + 64 * 1024]

        with api.client() as client:
            response = client.post(
                "/v1/jobs", content=chunks(), headers={"content-type": "application/json"}
            )
        assert "content-length" not in response.request.headers
        assert_problem(response, 413)

    def test_small_bodies_are_still_parsed(self, api: Stack) -> None:
        with api.client() as client:
            response = client.post("/v1/jobs", json={"model_id": "nope", "recipe": {}})
        assert_problem(response, 422)

    def test_uploads_keep_their_own_limit(self, api: Stack) -> None:
        as_found = leftovers(api)
        with api.client() as client:
            body = assert_problem(multipart_upload(client, 4 * MiB), 422)
        assert "unknown file format" in str(body["detail"])
        assert_nothing_left(api, as_found)


class TestScreeningCost:
    """Item 3: the door reads headers, never the whole upload."""

    def test_targz_bomb_refused_without_decompressing(self, api: Stack) -> None:
        as_found = leftovers(api)
        bomb = targz_bomb()
        assert len(bomb) < 3 * MiB
        pid = api_pid(api)
        with api.client() as client:
            before = cpu_seconds(pid)
            body = assert_problem(upload(client, bomb, "model.tar.gz"), 422)
            spent = cpu_seconds(pid) - before
        assert "ratio" in str(body["detail"]) or "expands" in str(body["detail"])
        assert spent < 1.0, f"the API spent {spent:.2f} s of CPU screening a 2 MB upload"
        assert_nothing_left(api, as_found)

    def test_junk_is_not_loaded_as_onnx(self, api: Stack) -> None:
        as_found = leftovers(api)
        junk = b"\x08\x07" + bytes(96 * MiB)  # starts like an ONNX ir_version field
        with api.client() as client, PeakMemory(api_pid(api)) as peak:
            body = assert_problem(upload(client, junk, "model.onnx"), 422)
        assert "unknown file format" in str(body["detail"])
        assert peak.growth_bytes < 48 * MiB, f"API grew {peak.growth_bytes / MiB:.0f} MiB"
        assert_nothing_left(api, as_found)


class TestOnnxHeader:
    """What the door calls ONNX, judged from the protobuf framing alone."""

    @pytest.mark.parametrize(
        "content",
        [
            b"\x08\x07" + bytes(4096),
            b"\x08\x07\x3a\xff\xff\xff\x7f",  # a graph field longer than the file
            b"hello world, not a model",
            b"\x3a\x02\x0a\x00",  # a graph but no ir_version
        ],
        ids=["zeros", "overlong-field", "text", "no-ir-version"],
    )
    def test_not_onnx(self, tmp_path: Path, content: bytes) -> None:
        path = tmp_path / "upload.bin"
        path.write_bytes(content)
        with pytest.raises(InvalidModelError, match="unknown file format"):
            screen_upload(path)

    def test_real_onnx(self, tmp_path: Path) -> None:
        path = tmp_path / "upload.bin"
        path.write_bytes(tiny_onnx())
        assert screen_upload(path) == "onnx"

    def test_truncated_onnx(self, tmp_path: Path) -> None:
        path = tmp_path / "upload.bin"
        path.write_bytes(tiny_onnx()[:-5])
        with pytest.raises(InvalidModelError):
            screen_upload(path)


@pytest.fixture(scope="module")
def default_limits_api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """The shipped 4 GiB upload limit (the shared `api` fixture lowers it)."""
    with running_stack("embedded", tmp_path_factory.mktemp("api-2g"), worker=False) as stack:
        yield stack


def test_2gb_upload_grows_the_api_by_at_most_64mb(default_limits_api: Stack) -> None:
    """Item 4: all 2 GB reach the API (the form is parsed whole before the route runs),
    which then refuses them as an unknown format; its peak RSS may grow by 64 MB at most."""
    api = default_limits_api
    as_found = leftovers(api)
    with api.client() as client:
        assert_problem(upload(client, b"warm up the upload path" * 10), 422)
        started = time.monotonic()
        with PeakMemory(api_pid(api)) as peak:
            body = assert_problem(multipart_upload(client, 2 * GiB), 422)
        elapsed = time.monotonic() - started
    assert "unknown file format" in str(body["detail"])
    print(f"2 GiB upload: {elapsed:.1f} s, API peak RSS growth {peak.growth_bytes / MiB:.1f} MiB")
    assert peak.growth_bytes <= 64 * MiB, f"API grew {peak.growth_bytes / MiB:.0f} MiB"
    assert_nothing_left(api, as_found)
