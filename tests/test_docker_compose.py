"""docker-compose.yml describes the scale-out deployment; no Docker engine runs here, so it is
validated with `docker-compose config` and checked for the services the design needs."""

from __future__ import annotations

import os
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


def test_services_restart_and_report_health(compose: dict) -> None:
    services = compose["services"]
    for name in ("api", "worker-cpu", "worker-gpu", "postgres", "redis"):
        assert services[name]["restart"] == "unless-stopped", name
        assert services[name]["healthcheck"]["test"], name
    assert services["migrate"]["restart"] == "no"  # it runs once; a failure must stay visible
    assert "/readyz" in " ".join(services["api"]["healthcheck"]["test"])
    for name, node in (("worker-cpu", "cpu-inspect@"), ("worker-gpu", "gpu@")):
        probe = " ".join(services[name]["healthcheck"]["test"])
        assert "celery -A workers.celery_app:celery_app inspect ping" in probe, probe
        # The node name app/cli.py gives the worker: "<queues>@<hostname>-<pid>", PID 1 here.
        assert f'-d "{node}$$(hostname)-1"' in probe, probe


def test_worker_node_name_matches_the_health_check() -> None:
    from app.cli import worker_cmd

    command = worker_cmd("cpu,inspect", 2)
    assert command[command.index("--hostname") + 1] == f"cpu-inspect@%h-{os.getpid()}"


def test_api_requires_keys_and_every_service_gets_s3_credentials(compose: dict) -> None:
    services = compose["services"]
    assert services["api"]["environment"]["MODELPRESS_AUTH_REQUIRED"] == "true"
    for name in ("api", "worker-cpu", "worker-gpu", "migrate"):
        env = services[name]["environment"]
        for variable in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
            # No value: compose copies it from the shell, or leaves it unset.
            assert variable in env and not env[variable], (name, variable)


def test_image_runs_unprivileged_with_pinned_installs() -> None:
    lines = [line.strip() for line in (ROOT / "Dockerfile").read_text().splitlines()]
    users = [line.split()[1] for line in lines if line.startswith("USER ")]
    assert users and users[-1] not in {"root", "0"}, users
    installs = [line for line in lines if "pip install" in line and " -e " in line]
    assert installs and all("-c constraints.txt" in line for line in installs), installs
    ignored = (ROOT / ".dockerignore").read_text().splitlines()
    assert {".git", ".venv", "var"} <= set(ignored)
