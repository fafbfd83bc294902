"""`modelpress run` itself: a fresh data dir is migrated and served, a dead process is
restarted (worker or API), a worker that cannot start stops everything past the cap, and
SIGTERM leaves nothing running. On the embedded default and on PostgreSQL + Redis."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa

from tests.faults import test_faults as faults
from tests.faults.test_faults import QUICK, assert_exactly_once, submit, submit_slow
from tests.fixtures.helpers import upload_ready, wait_until
from tests.fixtures.stack import ROOT, Stack, _postgres_database, _redis_url, free_port, unavailable

pytestmark = pytest.mark.e2e

MODELPRESS = str(Path(sys.executable).with_name("modelpress"))
# Stale-after stays at its 60 s default: recovery within seconds must not depend on it.
SETTINGS = {
    "MODELPRESS_HEARTBEAT_S": "1",
    "MODELPRESS_RECONCILE_AFTER_S": "4",
    "MODELPRESS_SUPERVISOR_BACKOFF_S": "0.5",
    "MODELPRESS_SUPERVISOR_STOP_GRACE_S": "5",
}
# A worker that dies at every start, before Celery even loads (as a broken native library would).
DYING_WORKER = """import os, sys
if sys.argv[:2] == ["-m", "worker"]:
    print("worker hook: refusing to start", flush=True)
    os._exit(7)
"""


@pytest.fixture(scope="module")
def digits_zip(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    return faults.digits_zip.__wrapped__(tmp_path_factory)  # type: ignore[attr-defined]


@pytest.fixture(scope="module")
def train_npz() -> bytes:
    return faults.train_npz.__wrapped__()  # type: ignore[attr-defined]


def descendants(pid: int) -> set[int]:
    """Every process below ``pid``, whatever session or group it moved to."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError, ValueError, IndexError):
            fields = stat.read_text().rsplit(")", 1)[1].split()
            children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    found: set[int] = set()
    todo = [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            if child not in found:
                found.add(child)
                todo.append(child)
    return found


def alive(pids: set[int]) -> set[int]:
    """Those still running (a zombie has finished: only its parent has not read its status)."""
    running = set()
    for pid in pids:
        with contextlib.suppress(OSError):
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
            if state != "Z":
                running.add(pid)
    return running


def cmdline(pid: int) -> str:
    with contextlib.suppress(OSError):
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    return ""


@contextlib.contextmanager
def service_env(kind: str, tmp: Path, **extra: str) -> Iterator[tuple[dict[str, str], str]]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MODELPRESS_")}
    data_dir = tmp / f"var-{kind}"  # not created: `modelpress run` starts from nothing
    env.update(
        MODELPRESS_DATA_DIR=str(data_dir),
        MODELPRESS_PORT=str(free_port()),
        MODELPRESS_MEASURE_ITERATIONS="10",
        MODELPRESS_MEASURE_WARMUP="2",
        HF_HUB_OFFLINE="1",
        TRANSFORMERS_OFFLINE="1",
        PYTHONUNBUFFERED="1",
        **SETTINGS,
        **extra,
    )
    if kind == "embedded":
        yield env, f"sqlite:///{data_dir / 'modelpress.db'}"
        return
    db_url = os.environ.get("MODELPRESS_TEST_DATABASE_URL")
    broker = os.environ.get("MODELPRESS_TEST_BROKER_URL")
    if not db_url or not broker:
        unavailable("MODELPRESS_TEST_DATABASE_URL / MODELPRESS_TEST_BROKER_URL are not set")
    assert db_url and broker
    database = _postgres_database(db_url)
    env["MODELPRESS_DATABASE_URL"] = next(database)
    env["MODELPRESS_BROKER_URL"] = _redis_url(broker)
    try:
        yield env, env["MODELPRESS_DATABASE_URL"]
    finally:
        for _ in database:
            pass


def start_run(env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("ab") as out:
        return subprocess.Popen(
            [MODELPRESS, "run"], cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT
        )


def stop_run(proc: subprocess.Popen[bytes]) -> None:
    """Teardown after a failed test: the test's own SIGTERM check is the real one."""
    tree = descendants(proc.pid)
    if proc.poll() is None:
        proc.terminate()
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=30)
    for pid in alive(tree | {proc.pid}):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    proc.wait()


def api_pid(supervisor: int) -> int:
    pids = [p for p in alive(descendants(supervisor)) if "uvicorn" in cmdline(p)]
    assert len(pids) == 1, pids
    return pids[0]


def workers(client: httpx.Client) -> list[dict[str, object]]:
    """The live workers, or none while the API does not answer."""
    try:
        response = client.get("/v1/workers")
    except httpx.HTTPError:
        return []
    return list(response.json()) if response.status_code == 200 else []


class Prober(threading.Thread):
    """Asks the API every 0.2 s; records every request that got no 200."""

    def __init__(self, base_url: str) -> None:
        super().__init__(daemon=True)
        self.base_url = base_url
        self.answered = 0
        self.failures: list[str] = []
        self.done = threading.Event()

    def run(self) -> None:
        with httpx.Client(base_url=self.base_url, timeout=5) as client:
            while not self.done.wait(0.2):
                try:
                    status = client.get("/v1/workers").status_code
                except httpx.HTTPError as exc:
                    self.failures.append(repr(exc))
                    continue
                if status == 200:
                    self.answered += 1
                else:
                    self.failures.append(str(status))


@pytest.fixture(scope="module", params=["embedded", "scaleout"])
def service(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Stack, subprocess.Popen[bytes]]]:
    tmp = tmp_path_factory.mktemp(f"run-{request.param}")
    with service_env(request.param, tmp) as (env, database_url):
        data_dir = Path(env["MODELPRESS_DATA_DIR"])
        stack = Stack(
            request.param,
            env,
            data_dir,
            f"http://127.0.0.1:{env['MODELPRESS_PORT']}",
            database_url,
        )
        proc = start_run(env, data_dir / "run.log")
        try:
            with httpx.Client(base_url=stack.base_url, timeout=5) as client:
                wait_until(lambda: workers(client), 90, f"modelpress run:\n{stack.logs()}")
            yield stack, proc
        finally:
            stop_run(proc)


def _migrations_head() -> str:
    from alembic.config import Config
    from alembic.script import ScriptDirectory

    return str(ScriptDirectory.from_config(Config(str(ROOT / "alembic.ini"))).get_current_head())


class TestModelpressRun:
    def test_fresh_data_dir_is_migrated_and_serves_a_job(
        self, service: tuple[Stack, subprocess.Popen[bytes]], digits_zip: bytes
    ) -> None:
        stack, _ = service
        engine = sa.create_engine(stack.database_url)
        with engine.connect() as conn:
            head = conn.execute(sa.text("SELECT version_num FROM alembic_version")).scalar_one()
        engine.dispose()
        assert head == _migrations_head()
        with stack.client() as client:
            ready = client.get("/readyz")
            assert ready.status_code == 200, ready.text
            assert ready.json()["queues_without_worker"] == ["gpu"]
            [worker] = workers(client)
            assert worker["restarts"] == 0 and worker["last_restart_reason"] is None
            model = upload_ready(client, digits_zip)["id"]
            assert_exactly_once(stack, client, submit(client, model, QUICK))

    def test_worker_killed_mid_job_is_restarted_and_the_job_reruns(
        self,
        service: tuple[Stack, subprocess.Popen[bytes]],
        digits_zip: bytes,
        train_npz: bytes,
    ) -> None:
        stack, _ = service
        prober = Prober(stack.base_url)
        with stack.client() as client:
            model = upload_ready(client, digits_zip)["id"]
            job_id = submit_slow(client, model, train_npz, 8)
            wait_until(
                lambda: "distillation" in client.get(f"/v1/jobs/{job_id}").json()["phase"],
                90,
                "the job to start training",
            )
            [old] = workers(client)
            old_tree = descendants(int(old["pid"]))  # Celery pool + job process
            assert any("workers.job_process" in cmdline(p) for p in old_tree), old_tree
            prober.start()
            os.kill(int(old["pid"]), signal.SIGKILL)
            killed = time.monotonic()
            [new] = wait_until(
                lambda: [w for w in workers(client) if w["pid"] != old["pid"]],
                60,
                "a restarted worker",
            )
            back_s = time.monotonic() - killed
            requeued = wait_until(
                lambda: "re-queued" in client.get(f"/v1/jobs/{job_id}/logs").text,
                60,
                "the job to be re-queued",
            )
            requeued_s = time.monotonic() - killed
            job = assert_exactly_once(stack, client, job_id)
            prober.done.set()
            prober.join()
        print(f"worker back in {back_s:.1f} s, job re-queued in {requeued_s:.1f} s")
        assert requeued
        assert back_s < 20, back_s
        assert requeued_s < 30, requeued_s  # not the 60 s stale-heartbeat timeout
        assert new["restarts"] == 1
        assert new["last_restart_reason"] == "killed by SIGKILL"
        assert alive(old_tree) == set(), "the dead worker's pool or job process is still running"
        assert job["attempts"] == 2
        assert prober.failures == [] and prober.answered > 10, prober.failures
        log = (stack.data_dir / "run.log").read_text()
        assert f"worker (pid {old['pid']}) stopped: killed by SIGKILL; restarting" in log

    def test_api_killed_comes_back_and_the_worker_carries_on(
        self, service: tuple[Stack, subprocess.Popen[bytes]], digits_zip: bytes
    ) -> None:
        stack, supervisor = service
        with stack.client() as client:
            [worker] = workers(client)
            model = upload_ready(client, digits_zip)["id"]
        old_api = api_pid(supervisor.pid)
        os.kill(old_api, signal.SIGKILL)
        with stack.client() as client:
            wait_until(lambda: workers(client), 60, "the API to answer again")
            assert api_pid(supervisor.pid) != old_api
            assert [w["pid"] for w in workers(client)] == [worker["pid"]]
            assert_exactly_once(stack, client, submit(client, model, QUICK))
        log = (stack.data_dir / "run.log").read_text()
        assert f"api (pid {old_api}) stopped: killed by SIGKILL; restarting" in log

    def test_sigterm_stops_everything_even_mid_job(
        self,
        service: tuple[Stack, subprocess.Popen[bytes]],
        digits_zip: bytes,
        train_npz: bytes,
    ) -> None:
        stack, supervisor = service
        with stack.client() as client:
            model = upload_ready(client, digits_zip)["id"]
            job_id = submit_slow(client, model, train_npz, 60)
            wait_until(
                lambda: "distillation" in client.get(f"/v1/jobs/{job_id}").json()["phase"],
                90,
                "the job to start training",
            )
        tree = alive(descendants(supervisor.pid))
        assert any("workers.job_process" in cmdline(p) for p in tree), tree
        assert any("uvicorn" in cmdline(p) for p in tree), tree
        asked = time.monotonic()
        supervisor.send_signal(signal.SIGTERM)
        assert supervisor.wait(timeout=60) == 0
        print(f"stopped in {time.monotonic() - asked:.1f} s")
        assert alive(tree) == set()
        with pytest.raises(httpx.ConnectError):
            httpx.get(f"{stack.base_url}/healthz", timeout=2)


@pytest.mark.parametrize("kind", ["embedded", "scaleout"])
def test_worker_dying_at_every_start_stops_the_service(kind: str, tmp_path: Path) -> None:
    hook = tmp_path / "hook"
    hook.mkdir()
    (hook / "sitecustomize.py").write_text(DYING_WORKER)
    with service_env(
        kind, tmp_path, MODELPRESS_SUPERVISOR_MAX_RESTARTS="2", PYTHONPATH=str(hook)
    ) as (env, _):
        log = Path(env["MODELPRESS_DATA_DIR"]) / "run.log"
        proc = start_run(env, log)
        try:
            code = proc.wait(timeout=90)
        finally:
            stop_run(proc)
        output = log.read_text()
    assert code == 1, output
    assert "the worker process stopped unexpectedly 3 times within 60 s" in output, output
    assert "(last: exit code 7)" in output
    assert "worker hook: refusing to start" in output.split("Last lines of the worker log:")[1]
    assert "restart 2 of at most 2" in output
    port = f"--port {env['MODELPRESS_PORT']} "
    left = [p for p in Path("/proc").glob("[0-9]*") if port in cmdline(int(p.name)) + " "]
    assert left == [], "the API outlived `modelpress run`"
