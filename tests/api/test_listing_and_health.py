"""Paging through models, jobs and datasets, and /readyz telling a load balancer the truth."""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest

from tests.fixtures.helpers import (
    assert_problem,
    digits_upload,
    npz_bytes,
    submit_job,
    upload_ready,
    wait_until,
)
from tests.fixtures.stack import REQUIRE, Stack, free_port, running_stack

COUNT = 5  # rows of each kind: odd, so the last page of two is short
QUICK = [{"technique": "quantization", "scheme": "int8_dynamic"}]


@pytest.fixture(scope="module")
def created(api: Stack, tmp_path_factory: pytest.TempPathFactory) -> dict[str, list[str]]:
    """COUNT models, jobs and datasets, oldest first. No compute worker: jobs stay queued."""
    digits = digits_upload(tmp_path_factory.mktemp("mlp"), epochs=1)
    rng = np.random.default_rng(0)
    with api.client() as client:
        models = [upload_ready(client, digits, f"m{i}.zip")["id"] for i in range(COUNT)]
        jobs = [submit_job(client, models[0], QUICK) for _ in range(COUNT)]
        datasets = []
        for i in range(COUNT):
            data = npz_bytes(input=rng.random((4, 64), dtype=np.float32))
            response = client.post("/v1/datasets", files={"file": (f"d{i}.npz", data)})
            assert response.status_code == 201, response.text
            datasets.append(response.json()["id"])
    return {"/v1/models": models, "/v1/jobs": jobs, "/v1/datasets": datasets}


def page(client: httpx.Client, path: str, **params: Any) -> dict[str, Any]:
    response = client.get(path, params=params)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def ids(body: dict[str, Any]) -> list[str]:
    return [item["id"] for item in body["items"]]


PATHS = ["/v1/models", "/v1/jobs", "/v1/datasets"]


class TestPagination:
    @pytest.mark.parametrize("path", PATHS)
    def test_pages_are_disjoint_and_cover_everything_in_order(
        self, api: Stack, created: dict[str, list[str]], path: str
    ) -> None:
        with api.client() as client:
            everything = page(client, path, limit=200)
            walked: list[str] = []
            offset = 0
            while True:
                body = page(client, path, limit=2, offset=offset)
                assert (body["limit"], body["offset"]) == (2, offset)
                assert body["total"] == everything["total"]
                if not body["items"]:
                    break
                assert len(body["items"]) <= 2
                walked += ids(body)
                offset += 2
            again = page(client, path, limit=200)
        assert walked == ids(everything) == ids(again)
        assert len(set(walked)) == len(walked) == everything["total"]
        ours = [i for i in walked if i in created[path]]
        assert ours == list(reversed(created[path])), "newest first"
        assert offset == 2 * -(-everything["total"] // 2)

    @pytest.mark.parametrize("path", PATHS)
    def test_offset_past_the_end_is_an_empty_page(
        self, api: Stack, created: dict[str, list[str]], path: str
    ) -> None:
        with api.client() as client:
            total = page(client, path)["total"]
            assert total >= COUNT
            past = page(client, path, limit=10, offset=total)
            far = page(client, path, limit=10, offset=2**31 - 1)
        assert past["items"] == [] and past["total"] == total
        assert far["items"] == [] and far["total"] == total

    @pytest.mark.parametrize("path", PATHS)
    @pytest.mark.parametrize(
        "params", [{"limit": 0}, {"limit": 201}, {"limit": "ten"}, {"offset": -1}]
    )
    def test_bad_window_is_a_422_problem(
        self, api: Stack, path: str, params: dict[str, Any]
    ) -> None:
        with api.client() as client:
            body = assert_problem(client.get(path, params=params), 422)
        assert next(iter(params)) in body["detail"], body


def assert_not_ready(response: httpx.Response, dependency: str) -> None:
    """503 naming the dependency that failed, without saying why (that goes to the log)."""
    assert response.status_code == 503, response.text
    assert response.headers["content-type"].startswith("application/"), response.headers
    assert response.json()["checks"][dependency] == "unavailable", response.text


class TestReadiness:
    def test_ready_when_everything_answers(self, api: Stack) -> None:
        with api.client() as client:
            response = client.get("/readyz")
        assert response.status_code == 200, response.text

    def test_unusable_storage_is_503_until_it_is_back(self, api: Stack) -> None:
        storage = api.data_dir / "storage"
        moved = api.data_dir / "storage-away"
        with api.client() as client:
            assert client.get("/readyz").status_code == 200
            storage.rename(moved)
            try:
                assert_not_ready(client.get("/readyz"), "storage")
            finally:
                moved.rename(storage)
            assert client.get("/readyz").status_code == 200


class _PrivateRedis:
    """A redis-server of our own, so stopping it takes no one else's broker away."""

    def __init__(self, folder: Path) -> None:
        import subprocess

        self.url = f"redis://127.0.0.1:{free_port()}/0"
        port = self.url.rsplit(":", 1)[1].split("/")[0]
        self.proc = subprocess.Popen(
            ["redis-server", "--port", port, "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--dir", str(folder)],
            stdout=subprocess.DEVNULL,
        )  # fmt: skip
        import redis

        wait_until(lambda: _pings(redis.Redis.from_url(self.url)), 10, "redis to start")

    def stop(self) -> None:
        self.proc.kill()
        self.proc.wait()


def _pings(client: Any) -> bool:
    try:
        return bool(client.ping())
    except Exception:
        return False


@pytest.fixture
def private_redis(tmp_path: Path) -> Iterator[Callable[[], _PrivateRedis]]:
    if shutil.which("redis-server") is None:
        if REQUIRE:
            pytest.fail("redis-server is not installed")
        pytest.skip("redis-server is not installed")
    started: list[_PrivateRedis] = []

    def start() -> _PrivateRedis:
        started.append(_PrivateRedis(tmp_path))
        return started[-1]

    yield start
    for server in started:
        server.stop()


def test_unreachable_broker_is_503(
    tmp_path: Path, private_redis: Callable[[], _PrivateRedis]
) -> None:
    broker = private_redis()
    with (
        running_stack("scaleout", tmp_path, worker=False, broker_url=broker.url) as stack,
        stack.client() as client,
    ):
        assert client.get("/readyz").status_code == 200
        broker.stop()
        assert_not_ready(client.get("/readyz"), "broker")
