"""Job rules: submission checks, cancellation, reports and artifacts."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, cast

from fastapi import Response
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from app import errors, idempotency
from app.auth import quotas
from app.broker import QueueName
from app.datasets import service as datasets_service
from app.db.models import Job, JobEvent, JobStatus, ModelFile, new_id, utcnow
from app.jobs import delivery, devices, goals, lifecycle, repository
from app.jobs.artifacts import media_type
from app.jobs.delivery import Artifact, Conditions
from app.jobs.phases import PhaseTime
from app.jobs.recipes import uploaded_students
from app.jobs.schemas import REGISTERED, JobCreate
from app.models_upload import repository as models_repository
from app.models_upload import service as models_service
from app.pools.repository import queue_has_live_worker
from app.settings import get_settings
from app.storage import get_storage
from compressor.errors import InvalidRecipeError
from compressor.formats.detect import ModelKind
from compressor.llm.rules import check_memory_fits
from compressor.recipe import Recipe, check_recipe_for_kind, check_target_fits_model
from compressor.search.goal import Goal
from compressor.target import Target


def _check_recipe(
    recipe: Recipe, kind: ModelKind, target: Target, *, inspection: dict[str, Any] | None = None
) -> None:
    recipe.check_target(target)
    check_recipe_for_kind(recipe, kind, target, inspection=inspection)


def _runs_on(recipe: Recipe, kind: ModelKind, target: Target) -> bool:
    try:
        _check_recipe(recipe, kind, target)
    except InvalidRecipeError:
        return False
    return True


class TargetTooLarge(errors.AppError):
    status, slug, title = 422, "target-too-large", "The target does not fit the model"


def _check_target_fits(target: Target, inspection: dict[str, Any] | None) -> None:
    try:
        check_target_fits_model(target, inspection=inspection)
    except InvalidRecipeError as exc:
        limit = (inspection or {}).get("max_sequence_length")
        raise TargetTooLarge(str(exc), max_sequence_length=limit) from exc
    limit_bytes = get_settings().worker.job_memory_bytes
    try:
        check_memory_fits(inspection, job_memory_bytes=limit_bytes)
    except InvalidRecipeError as exc:
        raise ModelTooLarge(str(exc), job_memory_bytes=limit_bytes) from exc


class ModelTooLarge(errors.AppError):
    status, slug, title = 422, "model-too-large", "The model does not fit a job's memory"


class RegistrationUnavailable(errors.AppError):
    status, slug, title = 422, "registration-unavailable", "Model registration is not configured"


def _pending_registration(request: JobCreate) -> dict[str, Any] | None:
    """The report's placeholder that tells the worker where to hand the artifact off."""
    if request.registration is None:
        return None
    if not get_settings().mlflow.mlflow_tracking_uri:
        raise RegistrationUnavailable(
            "this server has no MLflow tracking server: register.mlflow needs "
            "MODELPRESS_MLFLOW_TRACKING_URI set on the API and the workers"
        )
    return {REGISTERED: request.registration.model_dump(mode="json")}


def eta_seconds(job: Job) -> float | None:
    """Linear extrapolation; only offered once enough progress makes it meaningful."""
    if job.status != JobStatus.RUNNING or job.started_at is None or job.progress < 0.05:
        return None
    elapsed = (utcnow() - job.started_at).total_seconds()
    return round(max(elapsed * (1 - job.progress) / job.progress, 0.0), 1)


def waiting_reason(session: Session, job: Job) -> str | None:
    """A queued job held for its tenant's share (app/jobs/shares.py), or whose pool has no live
    worker, says so instead of waiting silently."""
    if job.status != JobStatus.QUEUED:
        return None
    if job.waiting_reason is not None:
        return job.waiting_reason
    stale = get_settings().worker.stale_after_s
    if queue_has_live_worker(session, job.queue, stale_after_s=stale):
        return None
    return f"no live worker serves the {job.queue!r} pool; the job waits until one starts"


def submit_job(session: Session, *, request: JobCreate, idempotency_key: str | None = None) -> Job:
    job_id = new_id()
    original = idempotency.replay(
        session,
        route="jobs",
        key=idempotency_key,
        body=lambda: request.model_dump(mode="json"),
        resource_id=job_id,
        load=repository.get,
    )
    if original is not None:
        return original
    pending_registration = _pending_registration(request)
    quotas.check_active_jobs(session)
    model = models_repository.get(session, request.model_id)
    if model is None:
        raise errors.ModelNotFound(f"no model with id {request.model_id!r}")
    models_service.require_ready(model)
    kind = cast(ModelKind, model.format)
    _check_target_fits(request.target, model.inspection)
    data = request.data.by_role()
    if request.goal is not None:
        target, time_limit_s = _plan_goal(session, request, request.goal, model, kind, data)
    else:
        assert request.recipe is not None
        target, time_limit_s = _plan_recipe(session, request, request.recipe, model, kind, data)
    job = Job(
        id=job_id,
        labels=request.labels,
        model_id=model.id,
        status=JobStatus.QUEUED,
        queue=QueueName.GPU if target.device == "gpu" else QueueName.CPU,
        priority=request.priority,
        time_limit_s=time_limit_s,
        recipe=request.recipe.model_dump(mode="json") if request.recipe is not None else None,
        goal=request.goal.model_dump(mode="json") if request.goal is not None else None,
        target=target.model_dump(mode="json"),
        data=data,
        report=pending_registration,
    )
    resolved = f" (device 'auto' -> {target.device!r})" if request.target.device == "auto" else ""
    lifecycle.submit(session, job=job, note=resolved)
    students = uploaded_students(request.recipe.model_dump() if request.recipe else None)
    try:
        repository.add_inputs(session, job.id, datasets=data, students=students)
    except IntegrityError as exc:  # a dataset or student was deleted since it was checked
        raise errors.Conflict(
            "a dataset or student model the job names was deleted while it was being submitted"
        ) from exc
    return job


def _plan_recipe(
    session: Session,
    request: JobCreate,
    recipe: Recipe,
    model: ModelFile,
    kind: ModelKind,
    data: dict[str, str],
) -> tuple[Target, int | None]:
    """A recipe job's device and time limit, once everything it names is checked."""
    target = devices.resolve_device(
        session, request.target, runs_on=lambda t: _runs_on(recipe, kind, t)
    )
    try:
        _check_recipe(recipe, kind, target, inspection=model.inspection)
    except InvalidRecipeError as exc:
        raise errors.InvalidRecipe(str(exc)) from exc
    if target.device == "gpu":
        devices.require_gpu(session)
    _check_uploaded_students(session, request)
    time_limit_s = _checked_time_limit(request.time_limit_s)
    datasets_service.check_job_data(session, model=model, data=data)
    return target, time_limit_s


def _plan_goal(
    session: Session,
    request: JobCreate,
    goal: Goal,
    model: ModelFile,
    kind: ModelKind,
    data: dict[str, str],
) -> tuple[Target, int | None]:
    """A goal job's device and time limit (by default long enough for the search's last round)."""
    target = devices.resolve_device(
        session,
        request.target,
        runs_on=lambda t: goals.has_candidates(goal, kind, t, data, model.inspection),
    )
    goals.check(goal, kind, target, data, inspection=model.inspection)
    if target.device == "gpu":
        devices.require_gpu(session)
    time_limit_s = request.time_limit_s
    if time_limit_s is None:
        time_limit_s = min(goals.default_time_limit(goal), _longest_time_limit())
    time_limit_s = _checked_time_limit(time_limit_s)
    datasets_service.check_job_data(session, model=model, data=data)
    goals.check_budget_data(session, goal, data)
    return target, time_limit_s


def _longest_time_limit() -> int:
    return get_settings().broker.visibility_timeout_s - 60


def _checked_time_limit(time_limit_s: int | None) -> int | None:
    longest = _longest_time_limit()
    if time_limit_s is not None and time_limit_s > longest:
        # The broker would re-deliver a job still running past its visibility timeout.
        raise errors.InvalidRecipe(
            f"time_limit_s may be at most {longest} s on this deployment "
            "(the broker's visibility timeout minus a margin)"
        )
    return time_limit_s


def _check_uploaded_students(session: Session, request: JobCreate) -> None:
    for student_id in uploaded_students(request.recipe.model_dump() if request.recipe else None):
        student = models_repository.get(session, student_id)
        if student is None:
            raise errors.ModelNotFound(f"no student model with id {student_id!r}")
        models_service.require_ready(student, role="student model")
        if student.format == "onnx":
            raise errors.InvalidRecipe(
                "the student is an ONNX graph, which cannot be trained; upload it as a Hugging "
                "Face directory or architecture.json + model.safetensors"
            )


def get_job(session: Session, *, job_id: str) -> Job:
    job = repository.get(session, job_id)
    if job is None:
        raise errors.JobNotFound(f"no job with id {job_id!r}")
    return job


def cancel_job(session: Session, *, job_id: str) -> Job:
    """A queued job is cancelled at once; a running one is flagged and its worker stops it."""
    job = get_job(session, job_id=job_id)
    if not lifecycle.cancel(session, job_id=job_id):
        raise errors.JobStateConflict(f"job {job_id} is already {job.status}; nothing to cancel")
    session.refresh(job)
    return job


def get_report(session: Session, *, job_id: str) -> dict[str, object]:
    job = get_job(session, job_id=job_id)
    # Before success the report holds at most the pending registration.
    if job.status != JobStatus.SUCCEEDED or job.report is None:
        raise errors.JobStateConflict(
            f"job {job_id} is {job.status}; its report exists once it has succeeded"
        )
    return {k: v for k, v in job.report.items() if k != REGISTERED}


def get_phases(session: Session, *, job_id: str) -> tuple[Job, list[PhaseTime]]:
    job = get_job(session, job_id=job_id)
    return job, lifecycle.phases_of(session, job)


def get_artifact(session: Session, *, job_id: str) -> Artifact:
    job = get_job(session, job_id=job_id)
    if job.status != JobStatus.SUCCEEDED or not job.artifact_key:
        raise errors.JobStateConflict(
            f"job {job_id} is {job.status}; its artifact exists once it has succeeded"
        )
    if not get_storage().exists(job.artifact_key):
        raise errors.NotFound(f"the artifact of job {job_id} is missing from storage")
    key = job.artifact_key
    extension = key.rsplit("/", 1)[-1].removeprefix("artifact")
    return Artifact(
        key=key,
        size=job.artifact_bytes or 0,
        sha256=job.artifact_sha256 or "",
        filename=f"modelpress-{job.id}{extension}",
        media_type=media_type(key),
    )


def artifact_response(
    session: Session, *, job_id: str, conditions: Conditions, with_body: bool
) -> Response:
    """The download, or with S3 and presigned downloads on, a redirect to the bucket."""
    storage_settings = get_settings().storage
    presigned = storage_settings.s3_presigned_downloads
    return delivery.artifact_response(
        get_artifact(session, job_id=job_id),
        get_storage(),
        conditions,
        with_body=with_body,
        redirect_expiry_s=storage_settings.s3_presigned_expiry_s if presigned else None,
    )


def job_events(session: Session, *, job_id: str, after_id: int = 0) -> Sequence[JobEvent]:
    get_job(session, job_id=job_id)
    return repository.events(session, job_id, after_id=after_id)
