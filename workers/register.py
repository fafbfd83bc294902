"""Hand a succeeded job's artifact to MLflow: one run (recipe as params, report figures as
metrics, archive and report as artifacts), then a version of the registered model.

Runs in the job process once the artifact is stored and before the job is marked succeeded. A
failed hand-off never fails the job: the artifact is good, so the error is recorded beside the
run id and version the job resource shows (report["registered"]).
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from app.db.models import Job
from app.jobs.schemas import REGISTERED, MlflowRegistered, Registered, Registration
from app.settings import MlflowSettings

log = logging.getLogger("modelpress.register")
ARTIFACT_PATH = "artifact"
# MLflow's own limit on a parameter's value is larger in recent versions; 500 fits all of them.
PARAM_MAX_CHARS = 500
FIGURE_SECTIONS = ("original", "compressed", "fidelity")


def flatten_params(value: Any, prefix: str = "") -> dict[str, str]:
    """{"steps": [{"technique": "pruning"}]} -> {"steps.0.technique": "pruning"}."""
    items: Iterable[tuple[Any, Any]]
    if isinstance(value, dict):
        items = value.items()
    elif isinstance(value, list) and value and all(isinstance(v, dict) for v in value):
        items = enumerate(value)
    else:
        text = value if isinstance(value, str) else json.dumps(value)
        return {prefix: text[:PARAM_MAX_CHARS]}
    flat: dict[str, str] = {}
    for key, inner in items:
        flat.update(flatten_params(inner, f"{prefix}.{key}" if prefix else str(key)))
    return flat


def report_metrics(report: dict[str, Any]) -> dict[str, float]:
    """The report's numeric figures: top-level ratios and each section's sizes and latencies."""

    def numbers(section: dict[str, Any], prefix: str) -> dict[str, float]:
        return {
            f"{prefix}{key}": float(value)
            for key, value in section.items()
            if isinstance(value, int | float) and not isinstance(value, bool)
        }

    metrics = numbers(report, "")
    for name in FIGURE_SECTIONS:
        section = report.get(name)
        if isinstance(section, dict):
            metrics.update(numbers(section, f"{name}."))
    return metrics


def _experiment_id(client: Any, name: str) -> str:
    found = client.get_experiment_by_name(name)
    if found is not None:
        return str(found.experiment_id)
    try:
        return str(client.create_experiment(name))
    except Exception:  # another worker created it in between
        return str(client.get_experiment_by_name(name).experiment_id)


def _ensure_registered_model(client: Any, name: str) -> None:
    from mlflow.exceptions import MlflowException

    try:
        client.get_registered_model(name)
    except MlflowException:
        try:
            client.create_registered_model(name)
        except MlflowException:  # created by another worker in between
            client.get_registered_model(name)


def log_and_register(
    *, settings: MlflowSettings, model_name: str, job: Job, report: dict[str, Any], archive: Path
) -> MlflowRegistered:
    """The run and model version; raises whatever MLflow raises."""
    # A tracking server that is down would otherwise hold the job for minutes of retries.
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "2")
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", "30")
    from mlflow import MlflowClient
    from mlflow.entities import Metric, Param

    client = MlflowClient(tracking_uri=settings.mlflow_tracking_uri)
    experiment = _experiment_id(client, settings.mlflow_experiment)
    run = client.create_run(
        experiment, run_name=f"modelpress-{job.id}", tags={"modelpress.job_id": job.id}
    )
    run_id = run.info.run_id
    try:
        params = {**flatten_params(job.recipe, "recipe"), **flatten_params(job.target, "target")}
        now = int(run.info.start_time)
        client.log_batch(
            run_id,
            metrics=[Metric(k, v, now, 0) for k, v in report_metrics(report).items()],
            params=[Param(k, v) for k, v in params.items()],
        )
        with tempfile.TemporaryDirectory() as tmp:
            report_file = Path(tmp) / "report.json"
            report_file.write_text(json.dumps(report, indent=2))
            client.log_artifact(run_id, str(report_file))
        client.log_artifact(run_id, str(archive), artifact_path=ARTIFACT_PATH)
        _ensure_registered_model(client, model_name)
        version = client.create_model_version(
            model_name,
            source=f"{run.info.artifact_uri}/{ARTIFACT_PATH}",
            run_id=run_id,
            tags={"modelpress.job_id": job.id},
        )
    except BaseException:
        client.set_terminated(run_id, status="FAILED")
        raise
    client.set_terminated(run_id, status="FINISHED")
    return MlflowRegistered(model_name=model_name, run_id=run_id, version=version.version)


def hand_off(
    *, settings: MlflowSettings, job: Job, report: dict[str, Any], archive: Path
) -> dict[str, Any] | None:
    """What the report records under "registered": the run and version, or the error; None
    when the job asked for no registration."""
    pending = (job.report or {}).get(REGISTERED)
    if pending is None:
        return None
    model_name = Registration.model_validate(pending).mlflow.model_name
    try:
        if not settings.mlflow_tracking_uri:
            raise RuntimeError("MODELPRESS_MLFLOW_TRACKING_URI is not set on this worker")
        done = log_and_register(
            settings=settings, model_name=model_name, job=job, report=report, archive=archive
        )
    except ImportError:
        done = MlflowRegistered(
            model_name=model_name,
            error="mlflow is not installed on this worker (pip install modelpress[mlflow])",
        )
    except Exception as exc:
        log.warning("job %s: MLflow registration failed: %s", job.id, exc)
        error = f"{type(exc).__name__}: {exc}"[:2000]
        done = MlflowRegistered(model_name=model_name, error=error)
    return Registered(mlflow=done).model_dump(mode="json")
