"""Real faults on a real deployment (PostgreSQL + Redis): every job ends in exactly one
terminal state, and no artifact is lost or duplicated."""

from __future__ import annotations

import io
import os
import signal
import subprocess
import time
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
import torch

from scripts.train_digits import train_and_save
from tests.fixtures.helpers import (
    job_process_pids,
    row_count,
    upload_ready,
    wait_for_dataset,
    wait_for_job,
    wait_until,
)
from tests.fixtures.stack import Stack, free_port, running_stack, unavailable

pytestmark = pytest.mark.e2e

FAST = {
    "MODELPRESS_HEARTBEAT_S": "1",
    "MODELPRESS_STALE_AFTER_S": "5",
    "MODELPRESS_RECONCILE_AFTER_S": "4",
    "MODELPRESS_CANCEL_POLL_S": "0.5",
}
QUICK = [{"technique": "quantization", "scheme": "int8_dynamic"}]


def slow(seconds: int) -> list[dict[str, Any]]:
    """A job that trains for about ``seconds``: long enough to be interrupted mid-run."""
    return [
        {
            "technique": "distillation",
            "width": 0.5,
            "epochs": 200,
            "batch_size": 8,  # small batches: 200 epochs outlast max_seconds on a quiet machine
            "max_seconds": seconds,
        }
    ]


@pytest.fixture(scope="module")
def digits_zip(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    folder = tmp_path_factory.mktemp("mlp")
    train_and_save("mlp", folder, epochs=3)
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name in ("architecture.json", "model.safetensors"):
            zf.write(folder / name, name)
    return buf.getvalue()


def submit(client: httpx.Client, model_id: str, steps: list[dict[str, Any]], **extra: Any) -> str:
    body = {"model_id": model_id, "recipe": {"steps": steps}, **extra}
    response = client.post("/v1/jobs", json=body)
    assert response.status_code == 202, response.text
    return str(response.json()["id"])


@pytest.fixture(scope="module")
def train_npz() -> bytes:
    from scripts.train_digits import digits_split

    split = digits_split(image=False)
    buf = io.BytesIO()
    np.savez(buf, input=split.x_train, labels=split.y_train)
    return buf.getvalue()


def submit_slow(
    client: httpx.Client, model_id: str, train_npz: bytes, seconds: int, **extra: Any
) -> str:
    """Trains on the 1437-image split, so it really runs for about ``seconds``."""
    dataset = client.post("/v1/datasets", files={"file": ("train.npz", train_npz)})
    assert dataset.status_code == 201, dataset.text
    assert wait_for_dataset(client, dataset.json()["id"])["status"] == "ready"
    return submit(client, model_id, slow(seconds), data={"train": dataset.json()["id"]}, **extra)


def artifacts_of(stack: Stack, job_id: str) -> list[Path]:
    folder = stack.data_dir / "storage" / "artifacts" / job_id
    return sorted(p for p in folder.rglob("*") if p.is_file()) if folder.exists() else []


def assert_exactly_once(stack: Stack, client: httpx.Client, job_id: str) -> dict[str, Any]:
    job = wait_for_job(client, job_id, stack=stack, timeout=240)
    assert job["status"] == "succeeded", f"{job}\n{stack.logs()}"
    logs = client.get(f"/v1/jobs/{job_id}/logs").text
    assert logs.count("job succeeded") == 1, logs
    files = artifacts_of(stack, job_id)
    assert len(files) == 1, files
    assert files[0].stat().st_size == job["artifact_bytes"]
    download = client.get(f"/v1/jobs/{job_id}/artifact")
    assert download.status_code == 200 and len(download.content) == job["artifact_bytes"]
    return job


@pytest.fixture
def stack(tmp_path: Path) -> Iterator[Stack]:
    with running_stack("scaleout", tmp_path, **FAST) as running:
        yield running


class TestCancel:
    def test_running_job_stops_within_seconds(
        self, stack: Stack, digits_zip: bytes, train_npz: bytes
    ) -> None:
        with stack.client() as client:
            model = upload_ready(client, digits_zip)["id"]
            job_id = submit_slow(client, model, train_npz, 120)
            wait_until(
                lambda: "distillation" in client.get(f"/v1/jobs/{job_id}").json()["phase"],
                90,
                "the job to start training",
            )
            asked = time.monotonic()
            assert client.post(f"/v1/jobs/{job_id}/cancel").status_code == 200
            job = wait_for_job(client, job_id, stack=stack, timeout=30)
            assert job["status"] == "cancelled"
            assert time.monotonic() - asked < 10
            assert artifacts_of(stack, job_id) == []
            assert client.get(f"/v1/jobs/{job_id}/artifact").status_code == 409

    def test_events_stream_until_the_end(self, stack: Stack, digits_zip: bytes) -> None:
        with stack.client() as client:
            model = upload_ready(client, digits_zip)["id"]
            job_id = submit(client, model, QUICK)
            events: list[str] = []
            with client.stream("GET", f"/v1/jobs/{job_id}/events", timeout=120) as response:
                assert response.headers["content-type"].startswith("text/event-stream")
                for line in response.iter_lines():
                    if line.startswith("event:"):
                        events.append(line.split(":", 1)[1].strip())
            assert events[-1] == "end"
            assert "state" in events and "log" in events
            assert client.get(f"/v1/jobs/{job_id}").json()["status"] == "succeeded"


class TestLimits:
    def test_time_limit_fails_cleanly(
        self, stack: Stack, digits_zip: bytes, train_npz: bytes
    ) -> None:
        with stack.client() as client:
            model = upload_ready(client, digits_zip)["id"]
            job_id = submit_slow(client, model, train_npz, 120, time_limit_s=15)
            job = wait_for_job(client, job_id, stack=stack, timeout=90)
        assert job["status"] == "failed"
        assert "time limit of 15 s" in job["error"]
        assert artifacts_of(stack, job_id) == []

    def test_out_of_memory_kill_is_named(
        self, stack: Stack, digits_zip: bytes, train_npz: bytes
    ) -> None:
        """The kernel's OOM killer sends SIGKILL to the job process; we do the same."""
        with stack.client() as client:
            model = upload_ready(client, digits_zip)["id"]
            job_id = submit_slow(client, model, train_npz, 60)
            wait_until(
                lambda: client.get(f"/v1/jobs/{job_id}").json()["eta_s"] is not None,
                90,
                "the job to report an ETA",
            )
            pids = job_process_pids(job_id)
            assert len(pids) == 1, pids
            os.kill(pids[0], signal.SIGKILL)
            job = wait_for_job(client, job_id, stack=stack, timeout=30)
        assert job["status"] == "failed"
        assert "out of memory" in job["error"]
        assert artifacts_of(stack, job_id) == []


def write_oversized_eval_npz(path: Path, nbytes: int) -> Path:
    """Digits-shaped eval inputs that expand to ``nbytes`` in memory, written in slices.

    One random column keeps the deflate ratio under the upload's zip-bomb limit.
    """
    rows = nbytes // (64 * 4) + 1
    rng = np.random.default_rng(0)
    header = {"descr": "<f4", "fortran_order": False, "shape": (rows, 64)}
    with (
        zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=1) as zf,
        zf.open("input.npy", "w", force_zip64=True) as member,
    ):
        np.lib.format.write_array_header_1_0(member, header)
        for start in range(0, rows, 1 << 20):
            block = np.zeros((min(1 << 20, rows - start), 64), dtype=np.float32)
            block[:, 0] = rng.random(len(block), dtype=np.float32)
            member.write(block.tobytes())
    return path


class TestJobMemoryLimit:
    def test_allocation_over_the_limit_fails_the_job_not_the_worker(
        self, tmp_path: Path, digits_zip: bytes
    ) -> None:
        """RLIMIT_DATA turns the job's real allocation (reading its eval set) into MemoryError.

        Without the limit this machine would grant the allocation, so only the setting can fail it.
        """
        # A job process holds about 1 GiB of private data once torch and the engine are loaded.
        limit = 3 * 1024**3
        with (
            running_stack(
                "scaleout", tmp_path, MODELPRESS_JOB_MEMORY_BYTES=str(limit), **FAST
            ) as stack,
            stack.client() as client,
        ):
            model = upload_ready(client, digits_zip)["id"]
            npz = write_oversized_eval_npz(tmp_path / "eval.npz", limit)
            with npz.open("rb") as fh:
                dataset = client.post("/v1/datasets", files={"file": fh}, timeout=300)
            assert dataset.status_code == 201, dataset.text
            assert wait_for_dataset(client, dataset.json()["id"])["status"] == "ready"
            job_id = submit(client, model, QUICK, data={"eval": dataset.json()["id"]})
            job = wait_for_job(client, job_id, stack=stack, timeout=180)
            assert job["status"] == "failed", f"{job}\n{stack.logs()}"
            assert "ran out of memory (the 3.0 GiB each job may use here)" in job["error"]
            assert job["attempts"] == 1
            logs = client.get(f"/v1/jobs/{job_id}/logs").text
            assert logs.count("ran out of memory") == 1, logs
            assert artifacts_of(stack, job_id) == []
            # The worker outlived its job process, and a job that fits runs under the same limit.
            assert stack.procs["worker"].poll() is None
            assert_exactly_once(stack, client, submit(client, model, QUICK))


class TestWorkerKilled:
    def test_sigkill_mid_job_reruns_exactly_once(
        self, stack: Stack, digits_zip: bytes, train_npz: bytes
    ) -> None:
        with stack.client() as client:
            model = upload_ready(client, digits_zip)["id"]
            job_id = submit_slow(client, model, train_npz, 8)
            wait_until(
                lambda: "distillation" in client.get(f"/v1/jobs/{job_id}").json()["phase"],
                90,
                "the job to start training",
            )
            stack.kill("worker")
            assert client.get(f"/v1/jobs/{job_id}").json()["status"] == "running"
            stack.start_worker("worker2")
            job = assert_exactly_once(stack, client, job_id)
            assert job["attempts"] == 2
            assert "re-queued" in client.get(f"/v1/jobs/{job_id}/logs").text

    def test_no_live_worker_is_reported(self, stack: Stack, digits_zip: bytes) -> None:
        stack.stop("worker")
        stack.start_worker("inspector", queues="inspect")  # uploads are inspected; no cpu pool
        with stack.client() as client:
            model = upload_ready(client, digits_zip)["id"]
            job_id = submit(client, model, QUICK)
            job = client.get(f"/v1/jobs/{job_id}").json()
            assert "no live worker" in (job["waiting_reason"] or "")
            stack.start_worker("worker2")
            assert_exactly_once(stack, client, job_id)
            assert client.get(f"/v1/jobs/{job_id}").json()["waiting_reason"] is None


class TestGpuPoolRouting:
    """Routing: a worker that serves the gpu queue counts as a GPU only when it reports one, so
    without CUDA here 'auto' stays on the CPU pool (never measured on a CPU as a GPU's)."""

    def test_routing_only_auto_picks_a_pool_that_can_run_the_recipe(
        self, stack: Stack, digits_zip: bytes
    ) -> None:
        fp16 = [{"technique": "quantization", "scheme": "fp16"}]
        with stack.client() as client:
            model = upload_ready(client, digits_zip)["id"]

            def auto(steps: list[dict[str, Any]]) -> dict[str, Any]:
                body = {"model_id": model, "recipe": {"steps": steps}, "target": {"device": "auto"}}
                response = client.post("/v1/jobs", json=body)
                assert response.status_code == 202, response.text
                return dict(response.json())

            no_gpu_yet = auto(fp16)
            stack.start_worker("gpu-worker", queues="gpu")
            wait_until(
                lambda: any("gpu" in w["queues"] for w in client.get("/v1/workers").json()),
                60,
                "the gpu worker to register",
            )
            on_gpu = auto(fp16)
            # int8_dynamic is CPU-only: 'auto' must not slip it past the refusal 'gpu' gets.
            cpu_only = auto(QUICK)
            refused = client.post(
                "/v1/jobs",
                json={"model_id": model, "recipe": {"steps": QUICK}, "target": {"device": "gpu"}},
            )
            assert refused.status_code == 422, refused.text
            workers_by_queue = {
                q: [w["name"] for w in client.get("/v1/workers").json() if q in w["queues"]]
                for q in ("cpu", "gpu")
            }
            gpu = "gpu" if torch.cuda.is_available() else "cpu"
            for job, device in ((no_gpu_yet, "cpu"), (on_gpu, gpu), (cpu_only, "cpu")):
                assert (job["queue"], job["target"]["device"]) == (device, device), job
                assert_exactly_once(stack, client, job["id"])
                report = client.get(f"/v1/jobs/{job['id']}/report").json()["report"]
                assert report["target"]["device"] == device
                logs = client.get(f"/v1/jobs/{job['id']}/logs").text
                assert f"device 'auto' -> '{device}'" in logs, logs
                ran_on = {q for q, names in workers_by_queue.items() for n in names if n in logs}
                assert ran_on == {device}, (workers_by_queue, logs)


class TestApiRestart:
    def test_api_killed_mid_job_loses_nothing(
        self, stack: Stack, digits_zip: bytes, train_npz: bytes
    ) -> None:
        with stack.client() as client:
            model = upload_ready(client, digits_zip)["id"]
            job_id = submit_slow(client, model, train_npz, 5)
        stack.kill("api")
        stack.start_api()
        with stack.client() as client:
            assert_exactly_once(stack, client, job_id)
            assert client.get(f"/v1/models/{model}").status_code == 200
        assert row_count(stack, "jobs") == 1


class _PrivateRedis:
    def __init__(self, port: int, folder: Path) -> None:
        self.port = port
        self.folder = folder
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.proc = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--dir", str(self.folder)],
            stdout=subprocess.DEVNULL,
        )  # fmt: skip
        import redis

        client = redis.Redis.from_url(self.url)
        wait_until(lambda: _pings(client), 10, "redis to start")

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait()
            self.proc = None


def _pings(client: Any) -> bool:
    try:
        return bool(client.ping())
    except Exception:
        return False


class TestRedisRestart:
    def test_queued_jobs_survive_a_broker_restart(self, tmp_path: Path, digits_zip: bytes) -> None:
        import shutil

        if shutil.which("redis-server") is None:
            unavailable("redis-server is not installed (.ci/run installs it)")
        redis_server = _PrivateRedis(free_port(), tmp_path)
        redis_server.start()
        try:
            with (
                running_stack(
                    "scaleout", tmp_path, worker=False, broker_url=redis_server.url, **FAST
                ) as stack,
                stack.client() as client,
            ):
                model = upload_ready(client, digits_zip)["id"]
                queued = [submit(client, model, QUICK) for _ in range(3)]
                redis_server.stop()  # loses every queued message: it keeps nothing on disk
                during = submit(client, model, QUICK)  # broker down: the row still commits
                redis_server.start()
                stack.start_worker()
                for job_id in [*queued, during]:
                    job = assert_exactly_once(stack, client, job_id)
                    assert job["attempts"] == 1
        finally:
            redis_server.stop()
