"""docker-compose.yml describes the scale-out deployment; no Docker engine runs here, so it is
validated with `docker-compose config` and checked for the services the design needs."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from tests.fixtures.stack import unavailable

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def compose() -> dict:
    tool = shutil.which("docker-compose")
    if tool is None:
        unavailable("docker-compose is not installed (.ci/run installs it)")
    result = subprocess.run(
        [tool, "-f", str(ROOT / "docker-compose.yml"), "config"],
        capture_output=True,
        text=True,
        check=False,
        cwd=ROOT,
    )
    assert result.returncode == 0, result.stderr
    return yaml.safe_load(result.stdout)


def test_services(compose: dict) -> None:
    assert {"api", "worker-cpu", "worker-gpu", "redis", "postgres", "migrate"} <= set(
        compose["services"]
    )


def test_pools_are_separate_queues(compose: dict) -> None:
    services = compose["services"]
    assert "cpu,inspect" in services["worker-cpu"]["command"]
    assert "gpu" in services["worker-gpu"]["command"]
    devices = services["worker-gpu"]["deploy"]["resources"]["reservations"]["devices"]
    assert devices[0]["capabilities"] == ["gpu"]


def test_redis_keeps_queued_jobs(compose: dict) -> None:
    command = " ".join(compose["services"]["redis"]["command"])
    assert "--appendonly yes" in command
    assert "--maxmemory-policy noeviction" in command


def test_same_code_switched_by_settings(compose: dict) -> None:
    for name in ("api", "worker-cpu", "worker-gpu", "migrate"):
        env = compose["services"][name]["environment"]
        assert env["MODELPRESS_DATABASE_URL"].startswith("postgresql+psycopg://")
        assert env["MODELPRESS_BROKER_URL"].startswith("redis://")
