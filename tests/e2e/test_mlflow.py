"""MLflow hand-off against a real `mlflow server` (SQLite backend, local artifact root) that the
test starts: a job with "register" logs a run and registers a model version, which MlflowClient
then reads back; the job resource names both. The artifacts go to the server's proxied store and
never to the worker's working directory (the repository root, where MLflow's default ./mlruns
would land). A `sqlite:` tracking URI, used without a server, is covered by calling the hand-off
directly."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.fixtures.helpers import (
    assert_problem,
    digits_upload,
    submit_job,
    upload_ready,
    wait_for_job,
)
from tests.fixtures.stack import ROOT, Stack, free_port, running_stack, unavailable

pytestmark = pytest.mark.e2e
STEPS = [{"technique": "quantization", "scheme": "fp16"}]


def _require_mlflow() -> None:
    try:
        import mlflow  # noqa: F401
    except ImportError:
        # The dev extra installs it; a bare install skips, CI (REQUIRE_SERVICES) fails.
        unavailable("mlflow is not installed: pip install -e '.[mlflow]'")


class MlflowServer:
    def __init__(self, root: Path) -> None:
        port = free_port()
        self.url = f"http://127.0.0.1:{port}"
        self.root = root
        self.log = root / "mlflow.log"
        command = [
            sys.executable, "-m", "mlflow", "server", "--host", "127.0.0.1", "--port", str(port),
            "--workers", "1", "--backend-store-uri", f"sqlite:///{root / 'mlflow.db'}",
            "--artifacts-destination", str(root / "artifacts"),
        ]  # fmt: skip
        self.proc = subprocess.Popen(
            command, cwd=root, stdout=self.log.open("ab"), stderr=subprocess.STDOUT,
            start_new_session=True,
        )  # fmt: skip

    def wait_ready(self, timeout: float = 180) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                break
            try:
                if httpx.get(f"{self.url}/health", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.5)
        raise RuntimeError(f"mlflow server did not start:\n{self.log.read_text()[-3000:]}")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


@pytest.fixture(scope="module", params=["scaleout"])
def registering(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Stack, MlflowServer]]:
    """A stack and its own tracking server (one test stops the server)."""
    _require_mlflow()
    tmp = tmp_path_factory.mktemp(f"mlflow-{request.param}")
    server = MlflowServer(tmp)
    try:
        server.wait_ready()
        env = {"MODELPRESS_MLFLOW_TRACKING_URI": server.url}
        with running_stack(request.param, tmp, **env) as stack:
            yield stack, server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def digits_model(
    registering: tuple[Stack, MlflowServer], tmp_path_factory: pytest.TempPathFactory
) -> str:
    archive = digits_upload(tmp_path_factory.mktemp("digits"))
    with registering[0].client() as client:
        return str(upload_ready(client, archive)["id"])


def _registered_job(stack: Stack, model_id: str, model_name: str) -> dict[str, Any]:
    register = {"mlflow": {"model_name": model_name}}
    with stack.client() as client:
        job_id = submit_job(client, model_id, STEPS, register=register)
        queued = client.get(f"/v1/jobs/{job_id}").json()
        assert queued["registered"]["mlflow"]["model_name"] == model_name
        job = wait_for_job(client, job_id, stack=stack)
        assert job["status"] == "succeeded", f"{job}\n{stack.logs()}"
        # The report stays the engine's typed report; the hand-off lives on the job resource.
        assert client.get(f"/v1/jobs/{job_id}/report").status_code == 200
    return job


def test_succeeded_job_is_logged_and_registered(
    registering: tuple[Stack, MlflowServer], digits_model: str
) -> None:
    from mlflow import MlflowClient

    registering_stack, mlflow_server = registering
    had_mlruns = (ROOT / "mlruns").exists()

    name = f"digits-{registering_stack.name}"
    job = _registered_job(registering_stack, digits_model, name)
    registered = job["registered"]["mlflow"]
    assert registered["error"] is None, registered
    assert registered["run_id"] and registered["version"] == "1", registered

    mlflow = MlflowClient(tracking_uri=mlflow_server.url)
    run = mlflow.get_run(registered["run_id"])
    assert run.info.status == "FINISHED"
    assert run.data.tags["modelpress.job_id"] == job["id"]
    assert run.data.params["recipe.steps.0.technique"] == "quantization"
    assert run.data.params["recipe.steps.0.scheme"] == "fp16"
    assert run.data.params["target.device"] == "cpu"
    with registering_stack.client() as client:
        report = client.get(f"/v1/jobs/{job['id']}/report").json()["report"]
    assert run.data.metrics["compression_ratio"] == pytest.approx(report["compression_ratio"])
    assert run.data.metrics["compressed.model_bytes"] == report["compressed"]["model_bytes"]
    assert "fidelity.cosine_mean" in run.data.metrics

    top = {a.path for a in mlflow.list_artifacts(run.info.run_id)}
    assert top == {"artifact", "report.json"}, top
    archived = mlflow.list_artifacts(run.info.run_id, "artifact")
    assert [a.file_size for a in archived] == [job["artifact_bytes"]]

    # Registered in the stack's tenant's namespace ("tests", its admin key's tenant).
    assert registered["model_name"] == f"tests.{name}", registered
    version = mlflow.get_model_version(registered["model_name"], registered["version"])
    assert version.run_id == registered["run_id"]
    assert version.source.endswith("/artifact")
    found = mlflow.search_model_versions(f"name='{registered['model_name']}'")
    assert [v.version for v in found] == ["1"]

    # The archive went through the server into its --artifacts-destination, not the worker's disk.
    assert run.info.artifact_uri.startswith("mlflow-artifacts:"), run.info.artifact_uri
    stored = list((mlflow_server.root / "artifacts").rglob("report.json"))
    assert len(stored) == 1, stored
    assert had_mlruns or not (ROOT / "mlruns").exists()


def test_unreachable_tracking_server_records_the_error(
    registering: tuple[Stack, MlflowServer], digits_model: str
) -> None:
    registering_stack, mlflow_server = registering
    mlflow_server.stop()  # the last test of the module: the hand-off now has nowhere to go
    job = _registered_job(registering_stack, digits_model, "digits-unreachable")
    registered = job["registered"]["mlflow"]
    assert registered["run_id"] is None and registered["version"] is None, registered
    assert registered["error"], registered
    assert job["artifact_bytes"]  # the job kept its artifact


def test_registration_without_a_tracking_server_is_refused(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    tmp = tmp_path_factory.mktemp("mlflow-off")
    with running_stack("embedded", tmp, worker=False) as stack, stack.client() as client:
        body = {
            "model_id": "any",
            "recipe": {"steps": STEPS},
            "register": {"mlflow": {"model_name": "digits"}},
        }
        problem = assert_problem(client.post("/v1/jobs", json=body), 422)
        assert "MODELPRESS_MLFLOW_TRACKING_URI" in problem["detail"]


def test_sqlite_tracking_uri_stores_run_and_version_under_the_data_dir(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No server: the worker writes the tracking database itself. MLflow's defaults would put the
    artifacts in ./mlruns of whatever directory the worker runs in, and its SQL registry returns
    the version as an int, which the job resource's str field refused."""
    _require_mlflow()
    from mlflow import MlflowClient

    from app.db.models import Job
    from app.settings import MlflowSettings
    from workers.register import hand_off

    workdir, data_dir = tmp_path / "worker-cwd", tmp_path / "data"
    workdir.mkdir()
    monkeypatch.chdir(workdir)
    monkeypatch.setenv("MODELPRESS_DATA_DIR", str(data_dir))
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    archive = tmp_path / "model.tar.xz"
    archive.write_bytes(b"not really an archive, only bytes to log")
    settings = MlflowSettings(mlflow_tracking_uri=uri, mlflow_experiment="modelpress")
    mlflow = MlflowClient(tracking_uri=uri)
    # Two tenants ask for the same name: each gets a model of its own, not versions of one.
    for tenant in ("alpha", "beta"):
        job = Job(
            id=f"job-sqlite-{tenant}",
            tenant=tenant,
            recipe={"steps": STEPS},
            target={"device": "cpu"},
            report={"registered": {"mlflow": {"model_name": "digits-sqlite"}}},
        )
        done = hand_off(
            settings=settings, job=job, report={"compression_ratio": 2.0}, archive=archive
        )
        assert done is not None
        registered = done["mlflow"]
        assert registered["error"] is None, registered
        assert registered["model_name"] == f"{tenant}.digits-sqlite", registered
        assert registered["run_id"] and registered["version"] == "1", registered
        version = mlflow.get_model_version(registered["model_name"], "1")
        assert version.run_id == registered["run_id"]
        assert version.tags["modelpress.tenant"] == tenant
        run = mlflow.get_run(registered["run_id"])
        assert mlflow.get_experiment(run.info.experiment_id).name == f"{tenant}/modelpress"
        assert run.info.artifact_uri.startswith((data_dir / "mlflow-artifacts").as_uri())
    assert not mlflow.search_registered_models("name='digits-sqlite'")
    assert list((data_dir / "mlflow-artifacts").rglob(archive.name))
    assert list(workdir.iterdir()) == []  # no ./mlruns beside the worker
