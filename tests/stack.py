"""A real modelpress deployment for tests: migrations, a uvicorn server and a celery worker process."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

ROOT = Path(__file__).resolve().parent.parent
REQUIRE = os.environ.get("MODELPRESS_TEST_REQUIRE_SERVICES") == "1"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def unavailable(reason: str) -> None:
    """Skip locally; in CI (MODELPRESS_TEST_REQUIRE_SERVICES=1) an unreachable service fails."""
    if REQUIRE:
        pytest.fail(reason)
    pytest.skip(reason)


@dataclass
class Stack:
    name: str
    env: dict[str, str]
    data_dir: Path
    base_url: str
    database_url: str
    procs: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)

    def client(self) -> httpx.Client:
        return httpx.Client(base_url=self.base_url, timeout=60)

    def start_worker(
        self, name: str = "worker", queues: str = "cpu,inspect"
    ) -> subprocess.Popen[bytes]:
        log = (self.data_dir / f"{name}.log").open("ab")
        proc = subprocess.Popen(
            [sys.executable, "-m", "app.cli", "worker", "--queues", queues],
            cwd=ROOT,
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group, so a test can kill it whole
        )
        self.procs[name] = proc
        return proc

    def start_api(self) -> None:
        log = (self.data_dir / "api.log").open("ab")
        self.procs["api"] = subprocess.Popen(
            [sys.executable, "-m", "app.cli", "serve"],
            cwd=ROOT,
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{self.base_url}/healthz", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            if self.procs["api"].poll() is not None:
                break
            time.sleep(0.3)
        raise RuntimeError(f"API did not start:\n{(self.data_dir / 'api.log').read_text()[-3000:]}")

    def kill(self, name: str) -> None:
        """SIGKILL the process and everything it started: a crash, not a shutdown."""
        proc = self.procs.pop(name)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()

    def stop(self, name: str) -> None:
        proc = self.procs.pop(name, None)
        if proc and proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()

    def stop_all(self) -> None:
        for name in list(self.procs):
            self.stop(name)

    def logs(self) -> str:
        return "\n".join(
            f"--- {p.name}\n{p.read_text()[-4000:]}" for p in sorted(self.data_dir.glob("*.log"))
        )


def _postgres_database(url: str) -> Iterator[str]:
    """A fresh database per test session on the given server, dropped afterwards."""
    import sqlalchemy as sa

    name = f"modelpress_test_{uuid.uuid4().hex[:10]}"
    admin = sa.create_engine(url, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    except sa.exc.OperationalError as exc:
        unavailable(f"PostgreSQL at {url} is unreachable: {exc}")
    try:
        yield str(sa.make_url(url).set(database=name).render_as_string(hide_password=False))
    finally:
        with admin.connect() as conn:
            conn.execute(
                sa.text(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = :n"
                ),
                {"n": name},
            )
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}"'))
        admin.dispose()


def _redis_url(url: str) -> str:
    import redis

    try:
        client = redis.Redis.from_url(url, socket_connect_timeout=3)
        client.ping()
        client.flushdb()
    except redis.RedisError as exc:
        unavailable(f"Redis at {url} is unreachable: {exc}")
    return url


@contextmanager
def running_stack(
    kind: str,
    tmp: Path,
    *,
    worker: bool = True,
    broker_url: str | None = None,
    **extra_env: str,
) -> Iterator[Stack]:
    """``broker_url`` replaces the broker (e.g. a private Redis a test restarts)."""
    data_dir = tmp / f"var-{kind}"
    data_dir.mkdir(parents=True)
    port = free_port()
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("MODELPRESS_") or k.startswith("MODELPRESS_TEST")
    }
    env.update(
        MODELPRESS_DATA_DIR=str(data_dir),
        MODELPRESS_PORT=str(port),
        MODELPRESS_MEASURE_ITERATIONS="10",
        MODELPRESS_MEASURE_WARMUP="2",
        HF_HUB_OFFLINE="1",
        TRANSFORMERS_OFFLINE="1",
        PYTHONUNBUFFERED="1",
        **extra_env,
    )
    db_cm: Iterator[str] | None = None
    if kind == "scaleout":
        db_url = os.environ.get("MODELPRESS_TEST_DATABASE_URL")
        shared_broker = os.environ.get("MODELPRESS_TEST_BROKER_URL")
        if not db_url or not shared_broker:
            unavailable("MODELPRESS_TEST_DATABASE_URL / MODELPRESS_TEST_BROKER_URL are not set")
        assert db_url and shared_broker
        db_cm = _postgres_database(db_url)
        env["MODELPRESS_DATABASE_URL"] = next(db_cm)
        env["MODELPRESS_BROKER_URL"] = _redis_url(broker_url or shared_broker)
    elif broker_url:
        env["MODELPRESS_BROKER_URL"] = broker_url
    database_url = env.get("MODELPRESS_DATABASE_URL") or f"sqlite:///{data_dir / 'modelpress.db'}"
    stack = Stack(kind, env, data_dir, f"http://127.0.0.1:{port}", database_url)
    try:
        subprocess.run(
            [sys.executable, "-m", "app.cli", "migrate"], cwd=ROOT, env=env, check=True,
            capture_output=True,
        )  # fmt: skip
        stack.start_api()
        if worker:
            stack.start_worker()
        else:  # no compute pool, but uploads still need inspecting before a job may use them
            stack.start_worker("inspector", queues="inspect")
        yield stack
    finally:
        stack.stop_all()
        if db_cm is not None:
            for _ in db_cm:
                pass
