"""The process that runs one job's compression, supervised by the Celery task (execute.py).

Running it in its own process lets the supervisor stop a job within seconds (cancel, time
limit), and tells an out-of-memory kill apart from a clean failure.
"""

from __future__ import annotations

import logging
import resource
import shutil
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy.orm import Session

from app.db.models import Dataset as DatasetRow
from app.db.models import Job, JobPhase
from app.db.session import get_engine, get_sessionmaker
from app.jobs import lifecycle
from app.jobs.artifacts import archive_kind, artifact_key
from app.jobs.errors import CANCELLED_EXIT_CODE, InternalError, JobError, job_error_from
from app.jobs.lifecycle import RunInputs
from app.jobs.schemas import REGISTERED
from app.settings import get_settings
from app.storage import get_storage
from compressor.artifacts import PackedFile, deliverable
from compressor.datasets import job_inputs
from compressor.errors import CompressionError
from compressor.lifeline import die_with_parent
from compressor.measure.settings import MeasureSettings
from compressor.pipeline import compress_model
from compressor.recipe import Recipe
from compressor.target import Target
from workers.patience import patiently
from workers.register import hand_off
from workers.unpacking import fetch_model

log = logging.getLogger("modelpress.job")
T = TypeVar("T")


class JobCancelled(Exception):
    pass


def limit_memory(limit: int | None) -> None:
    """Cap private data, so an oversized job fails with MemoryError in its own process.

    RLIMIT_DATA counts heap and anonymous mappings (what tensors and arrays take), not the
    shared libraries: torch's CUDA build maps over 3 GiB of address space before a job starts.
    """
    if limit:
        resource.setrlimit(resource.RLIMIT_DATA, (limit, limit))


class JobRun:
    """The job process's handle on its row: each call is one session and one lifecycle call,
    retried while the database is briefly away (for as long as the attempt's lease lasts)."""

    def __init__(self, job_id: str, owner: str, workdir: Path) -> None:
        self.job_id = job_id
        self.owner = owner
        self.workdir = workdir

    def _in_transaction(self, what: str, call: Callable[[Session], T]) -> T:
        def attempt() -> T:
            with get_sessionmaker().begin() as session:
                return call(session)

        return patiently(attempt, f"{what} of job {self.job_id}")

    def progress(self, phase: str, fraction: float) -> None:
        going = self._in_transaction(
            "recording progress",
            lambda s: lifecycle.progress(
                s, job_id=self.job_id, owner=self.owner, phase=phase, fraction=fraction
            ),
        )
        if not going:
            raise JobCancelled

    def succeed(self, **artifact: Any) -> bool:
        return self._in_transaction(
            "recording success",
            lambda s: lifecycle.succeed(s, job_id=self.job_id, owner=self.owner, **artifact),
        )

    def fail(self, error: JobError) -> None:
        self._in_transaction(
            "recording failure",
            lambda s: lifecycle.fail(s, job_id=self.job_id, owner=self.owner, error=error),
        )

    def load(self) -> RunInputs:
        inputs = self._in_transaction(
            "loading",
            lambda s: lifecycle.start_run(s, job_id=self.job_id, owner=self.owner),
        )
        if inputs is None:
            raise JobCancelled
        return inputs


def _dataset_key(dataset_id: str) -> str | None:
    def read() -> str | None:
        with get_sessionmaker()() as session:
            row = session.get(DatasetRow, dataset_id)
            return row.storage_key if row is not None else None

    return patiently(read, f"reading dataset {dataset_id}")


def _job_data(job: Job, source: Path, workdir: Path) -> dict[str, Any]:
    """compress_model keyword arguments from the job's datasets (checked at submission)."""
    paths: dict[str, Path] = {}
    for role, dataset_id in job.data.items():
        key = _dataset_key(dataset_id)
        if key is None:
            raise CompressionError(f"the {role} dataset {dataset_id} was deleted")
        paths[role] = workdir / f"dataset-{role}"
        get_storage().fetch_to(key, paths[role])
    return job_inputs(source, paths, Target.model_validate(job.target))


def run(run: JobRun) -> None:
    settings = get_settings()
    inputs = run.load()
    job, model = inputs.job, inputs.model
    if job.goal is not None:
        from workers.search import run_search

        run_search(run, inputs)
        return
    run.progress(JobPhase.FETCHING_MODEL, 0.01)
    source = fetch_model(model.storage_key, run.workdir / "input")
    data = _job_data(job, source, run.workdir)
    if inputs.students:
        data["student_dir"] = fetch_model(inputs.students[0].storage_key, run.workdir / "student")
    measure = MeasureSettings(
        threads=settings.worker.worker_threads,
        warmup=settings.worker.measure_warmup,
        iterations=settings.worker.measure_iterations,
    )
    result = compress_model(
        source,
        Recipe.model_validate(job.recipe),
        target=Target.model_validate(job.target),
        workdir=run.workdir / "work",
        settings=measure,
        progress=lambda phase, fraction: run.progress(phase, fraction * 0.95),
        **data,
    )
    run.progress(JobPhase.UPLOADING, 0.96)
    # The engine's report and the recipe travel inside the archive, so a downloaded model
    # says how it was made and the recipe can be resubmitted as it is.
    documents = {"report.json": result.report, "recipe.json": job.recipe}
    packed = deliverable(result.artifact_dir, documents=documents, workdir=run.workdir)
    publish(run, job, packed, report=result.report, artifact_format=result.artifact_format)


def publish(
    run: JobRun,
    job: Job,
    packed: PackedFile,
    *,
    report: dict[str, Any],
    artifact_format: str,
    recipe: dict[str, Any] | None = None,
) -> None:
    """Store the archive, then mark the job succeeded; a job no longer ours keeps nothing."""
    archive, size, sha256 = packed.path, packed.bytes, packed.sha256
    key = artifact_key(job.id, job.attempts, archive.name)
    get_storage().put_file(key, archive)
    artifact = {
        "bytes": size,
        "sha256": sha256,
        "format": artifact_format,
        "archive": archive_kind(archive.name),
    }
    report = {**report, "artifact": artifact}
    if recipe is not None:  # a goal job's: MLflow records the recipe its search chose
        job.recipe = recipe
    registered = hand_off(settings=get_settings().mlflow, job=job, report=report, archive=archive)
    if registered is not None:
        report[REGISTERED] = registered
    # Scratch files go before the job is marked done, so a finished job leaves nothing behind.
    shutil.rmtree(run.workdir, ignore_errors=True)
    finished = run.succeed(
        report=report,
        artifact_key=key,
        artifact_bytes=size,
        artifact_sha256=sha256,
        artifact_format=artifact_format,
        recipe=recipe,
    )
    if not finished:
        get_storage().delete(key)
        raise JobCancelled


def main(job_id: str, owner: str, workdir: str) -> int:
    die_with_parent()  # the supervisor's process: it kills this one's group when the job ends
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    memory_limit = get_settings().worker.job_memory_bytes
    # Load the database driver and open the pool before the cap: under it, importing a module
    # can fail too, and the job could not then record why it stopped.
    patiently(lambda: get_engine().connect().close(), f"connecting for job {job_id}")
    limit_memory(memory_limit)
    threads = get_settings().worker.worker_threads
    import torch

    torch.set_num_threads(threads)
    job_run = JobRun(job_id, owner, Path(workdir))
    try:
        run(job_run)
    except JobCancelled:
        return CANCELLED_EXIT_CODE
    except Exception as exc:
        error = job_error_from(exc, memory_limit=memory_limit)
        if isinstance(error, InternalError):
            log.exception("job %s failed unexpectedly", job_id)
        else:
            log.warning("job %s failed: %s", job_id, error)
        job_run.fail(error)
    return 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:4]))
