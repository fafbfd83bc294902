"""A job that is cancelled or runs out of time leaves no process behind: not its job
process, and not the measurement probe that job process started (issue 12, item 6)."""

from __future__ import annotations

import contextlib
import time
from pathlib import Path

import httpx
import pytest

from tests.faults.test_faults import submit
from tests.fixtures.helpers import upload_ready, wait_for_job, wait_until
from tests.fixtures.onnx_graphs import endless_loop
from tests.fixtures.stack import PATIENCE, Stack
from workers.spare import process_name

pytestmark = pytest.mark.e2e
# Smoothing would run the graph inside the job process; without it the first run of the
# model is the measurement probe's.
QUANTIZE = [{"technique": "quantization", "scheme": "int8_dynamic", "smoothing": 0}]


def processes_of(job_id: str) -> dict[int, str]:
    """Live processes whose command line names the job (its probes, a job process started for
    it), or named for it (a job process forked by a fork server: workers/spare.py)."""
    found = {}
    for proc in Path("/proc").glob("[0-9]*"):
        with contextlib.suppress(OSError, IndexError):
            state = (proc / "stat").read_text().rsplit(")", 1)[1].split()[0]
            command = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode()
            named = (proc / "comm").read_text().strip() == process_name(job_id)
            if (job_id in command or named) and state != "Z":
                found[int(proc.name)] = command
    return found


def probing(job_id: str) -> bool:
    return any("compressor.measure.probe" in c for c in processes_of(job_id).values())


def assert_nothing_left(job_id: str) -> None:
    deadline = (
        time.monotonic() + 3 * PATIENCE
    )  # SIGKILL is delivered at once; allow for a busy machine
    while processes_of(job_id) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert processes_of(job_id) == {}


@pytest.fixture(scope="module")
def endless(stack: Stack) -> str:
    with stack.client() as client:
        return str(upload_ready(client, endless_loop(), "endless.onnx")["id"])


def start_endless_job(client: httpx.Client, model: str, **extra: object) -> str:
    job_id = submit(client, model, QUANTIZE, **extra)
    wait_until(lambda: probing(job_id), 90, "the job to start measuring the endless model")
    # Past the probe's start-up: one still starting writes to its dead parent's pipe and may
    # die of SIGPIPE by luck; inside the Loop it writes nothing and would run for ever.
    time.sleep(10)
    return job_id


class TestNothingOutlivesItsJob:
    def test_time_limit(self, stack: Stack, endless: str) -> None:
        with stack.client() as client:
            job_id = start_endless_job(client, endless, time_limit_s=60)
            job = wait_for_job(client, job_id, stack=stack, timeout=120)
        assert job["status"] == "failed", job
        assert "time limit of 60 s" in job["error"]
        assert_nothing_left(job_id)

    def test_cancel(self, stack: Stack, endless: str) -> None:
        with stack.client() as client:
            job_id = start_endless_job(client, endless)
            assert client.post(f"/v1/jobs/{job_id}/cancel").status_code == 200
            job = wait_for_job(client, job_id, stack=stack, timeout=60)
        assert job["status"] == "cancelled", job
        assert_nothing_left(job_id)
