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
from urllib.parse import urlsplit

from app.db.models import Job
from app.jobs.schemas import REGISTERED, MlflowRegistered, Registered, Registration
from app.settings import MlflowSettings, PathsSettings

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


def _experiment(client: Any, name: str, artifact_location: str | None) -> Any:
    from mlflow.exceptions import MlflowException

    found = client.get_experiment_by_name(name)
    if found is None:
        try:
            client.create_experiment(name, artifact_location=artifact_location)
        except MlflowException:  # another worker created it in between, or a real error
            if client.get_experiment_by_name(name) is None:
                raise
        found = client.get_experiment_by_name(name)
    elif artifact_location and found.artifact_location != artifact_location:
        # MLflow fixes the location when the experiment is made; name the mismatch so an old
        # experiment (e.g. one writing to ./mlruns) is not mistaken for the configured store.
        log.warning(
            "experiment %r keeps its artifacts at %s, not %s",
            name,
            found.artifact_location,
            artifact_location,
        )
    return found


def _refuse_local_artifacts(settings: MlflowSettings, artifact_location: str) -> None:
    """A remote tracking server whose experiment points at a plain path would have this worker
    write the archive into its own filesystem, where the server never sees it."""
    scheme = urlsplit(artifact_location).scheme
    if settings.tracks_over_http() and scheme in {"", "file"}:
        raise RuntimeError(
            f"the tracking server gives experiment {settings.mlflow_experiment!r} the local "
            f"artifact location {artifact_location}; start it with --serve-artifacts "
            "(mlflow-artifacts:) or set MODELPRESS_MLFLOW_ARTIFACT_ROOT to a shared store"
        )


def tenant_name(name: str, tenant: str | None, *, separator: str = ".") -> str:
    """An MLflow server has one namespace for every tenant of this service: a tenant's models and
    experiment carry its name, so two tenants asking for "digits" never add versions to one
    registered model (nor read each other's runs as their own)."""
    return name if tenant is None else f"{tenant}{separator}{name}"


def _tags(job: Job) -> dict[str, str]:
    return {
        "modelpress.job_id": job.id,
        **({"modelpress.tenant": job.tenant} if job.tenant else {}),
    }


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
    *,
    settings: MlflowSettings,
    data_dir: Path,
    model_name: str,
    job: Job,
    report: dict[str, Any],
    archive: Path,
) -> MlflowRegistered:
    """The run and model version; raises whatever MLflow raises."""
    # A tracking server that is down would otherwise hold the job for minutes of retries.
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "2")
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", "30")
    from mlflow import MlflowClient
    from mlflow.entities import Metric, Param

    client = MlflowClient(tracking_uri=settings.mlflow_tracking_uri)
    experiment = _experiment(
        client,
        tenant_name(settings.mlflow_experiment, job.tenant, separator="/"),
        settings.artifact_location(data_dir=data_dir),
    )
    _refuse_local_artifacts(settings, experiment.artifact_location)
    run = client.create_run(
        experiment.experiment_id,
        run_name=f"modelpress-{job.id}",
        tags=_tags(job),
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
            tags=_tags(job),
        )
    except BaseException:
        client.set_terminated(run_id, status="FAILED")
        raise
    client.set_terminated(run_id, status="FINISHED")
    # A database-backed registry (sqlite:, postgresql:) returns the version as an int, the REST
    # one as a string; the job resource always says "1", "2", ...
    return MlflowRegistered(model_name=model_name, run_id=run_id, version=str(version.version))


def wants_registration(job: Job) -> bool:
    """The job asked to be registered (its report holds the pending registration)."""
    return (job.report or {}).get(REGISTERED) is not None


def hand_off(
    *, settings: MlflowSettings, job: Job, report: dict[str, Any], archive: Path
) -> dict[str, Any] | None:
    """What the report records under "registered": the run and version, or the error; None
    when the job asked for no registration."""
    pending = (job.report or {}).get(REGISTERED)
    if pending is None:
        return None
    model_name = tenant_name(Registration.model_validate(pending).mlflow.model_name, job.tenant)
    try:
        if not settings.mlflow_tracking_uri:
            raise RuntimeError("MODELPRESS_MLFLOW_TRACKING_URI is not set on this worker")
        done = log_and_register(
            settings=settings,
            data_dir=PathsSettings().resolved(),
            model_name=model_name,
            job=job,
            report=report,
            archive=archive,
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
