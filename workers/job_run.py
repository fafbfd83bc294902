"""One job run, seen from its job process: the row's handle, its sessions, and delivery.

Both kinds of job body use it: a recipe's (workers/job_process.py) and a goal's search
(workers/search.py). Neither imports the other's module for these parts, so the run has one home.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy.orm import Session

from app.auth.tenancy import scope_to_tenant
from app.db.models import Job
from app.db.session import get_sessionmaker
from app.jobs import lifecycle
from app.jobs.artifacts import archive_kind, artifact_key
from app.jobs.errors import JobError
from app.jobs.lifecycle import RunInputs
from app.jobs.schemas import REGISTERED
from app.settings import get_settings
from app.storage import get_storage
from compressor.artifacts import PackedFile
from compressor.measure.settings import MeasureSettings
from workers.patience import patiently
from workers.register import hand_off, wants_registration

T = TypeVar("T")


class JobCancelled(Exception):
    pass


def measure_settings() -> MeasureSettings:
    """How this worker times models: its threads, warm-up and iterations (settings.py)."""
    worker = get_settings().worker
    return MeasureSettings(
        threads=worker.worker_threads,
        warmup=worker.measure_warmup,
        iterations=worker.measure_iterations,
        decode_budget_s=worker.measure_decode_budget_s,
    )


def session(tenant: str | None = None) -> Session:
    """A worker session (every module of workers/ opens its sessions here); with ``tenant``,
    one that sees only that tenant's rows (app/auth/tenancy.py), so a goal job's search reads
    and makes its candidates for its own tenant alone, whatever ids reach it."""
    opened = get_sessionmaker()()
    if tenant is not None:
        scope_to_tenant(opened, tenant)
    return opened


def in_transaction(what: str, call: Callable[[Session], T], *, tenant: str | None = None) -> T:
    """``call`` in one committed transaction, retried while the database is briefly away."""

    def attempt() -> T:
        with session(tenant) as opened, opened.begin():
            return call(opened)

    return patiently(attempt, what)


def reading(what: str, call: Callable[[Session], T], *, tenant: str | None = None) -> T:
    """``call`` in a session that is closed, not committed, retried while the database is away."""

    def attempt() -> T:
        with session(tenant) as opened:
            return call(opened)

    return patiently(attempt, what)


class JobRun:
    """The job process's handle on its row: each call is one session and one lifecycle call,
    retried while the database is briefly away (for as long as the attempt's lease lasts)."""

    def __init__(self, job_id: str, owner: str, workdir: Path) -> None:
        self.job_id = job_id
        self.owner = owner
        self.workdir = workdir

    def _in_transaction(self, what: str, call: Callable[[Session], T]) -> T:
        return in_transaction(f"{what} of job {self.job_id}", call)

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


def publish(
    run: JobRun,
    job: Job,
    packed: PackedFile,
    *,
    report: dict[str, Any],
    artifact_format: str,
) -> None:
    """Store the archive, then mark the job succeeded; a job no longer ours keeps nothing."""
    stored = StoredArchive(
        key=artifact_key(job.id, job.attempts, packed.path.name),
        name=packed.path.name,
        bytes=packed.bytes,
        sha256=packed.sha256,
        format=artifact_format,
    )
    get_storage().put_file(stored.key, packed.path)
    _succeed(run, job, stored, report=report, local=lambda: packed.path)


def publish_copy(
    run: JobRun, job: Job, chosen: Job, *, report: dict[str, Any], recipe: dict[str, Any]
) -> None:
    """A goal job's artifact: its chosen candidate's, copied inside the storage (a server-side
    copy on S3). Its size and sha256 come from the candidate's row: nothing is downloaded,
    hashed or uploaded again, unless MLflow registration needs the file here."""
    assert chosen.artifact_key and chosen.artifact_bytes and chosen.artifact_sha256
    name = chosen.artifact_key.rsplit("/", 1)[-1]
    stored = StoredArchive(
        key=artifact_key(job.id, job.attempts, name),
        name=name,
        bytes=chosen.artifact_bytes,
        sha256=chosen.artifact_sha256,
        format=chosen.artifact_format or "onnx",
    )
    get_storage().copy(chosen.artifact_key, stored.key)

    def local() -> Path:
        path = run.workdir / name
        get_storage().fetch_to(stored.key, path)
        return path

    job.recipe = recipe  # MLflow records the recipe the search chose
    _succeed(run, job, stored, report=report, local=local, recipe=recipe)


@dataclass(frozen=True)
class StoredArchive:
    key: str
    name: str
    bytes: int
    sha256: str
    format: str


def _succeed(
    run: JobRun,
    job: Job,
    stored: StoredArchive,
    *,
    report: dict[str, Any],
    local: Callable[[], Path],
    recipe: dict[str, Any] | None = None,
) -> None:
    artifact = {
        "bytes": stored.bytes,
        "sha256": stored.sha256,
        "format": stored.format,
        "archive": archive_kind(stored.name),
    }
    report = {**report, "artifact": artifact}
    if wants_registration(job):
        registered = hand_off(
            settings=get_settings().mlflow, job=job, report=report, archive=local()
        )
        if registered is not None:
            report[REGISTERED] = registered
    # Scratch files go before the job is marked done, so a finished job leaves nothing behind.
    shutil.rmtree(run.workdir, ignore_errors=True)
    finished = run.succeed(
        report=report,
        artifact_key=stored.key,
        artifact_bytes=stored.bytes,
        artifact_sha256=stored.sha256,
        artifact_format=stored.format,
        recipe=recipe,
    )
    if not finished:
        get_storage().delete(stored.key)
        raise JobCancelled
