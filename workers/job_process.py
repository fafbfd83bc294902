"""The process that runs one job's compression, supervised by the Celery task (execute.py).

Running it in its own process lets the supervisor stop a job within seconds (cancel, time
limit), and tells an out-of-memory kill apart from a clean failure.
"""

from __future__ import annotations

import ctypes
import errno
import logging
import resource
import shutil
import signal
import sys
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from app.db.models import Dataset as DatasetRow
from app.db.models import Job, JobStatus, ModelFile, utcnow
from app.db.session import get_sessionmaker
from app.jobs import repository as jobs_repository
from app.jobs.artifacts import archive_kind, artifact_key
from app.jobs.service import uploaded_students
from app.models_upload.service import unpack_for_job
from app.settings import get_settings
from app.storage import get_storage
from app.storage.base import StorageFull
from compressor.datasets import Dataset, read_dataset, tokenize_texts
from compressor.digest import sha256_file
from compressor.errors import CompressionError
from compressor.formats.hf import load_tokenizer
from compressor.inputs import LABELS
from compressor.measure.settings import MeasureSettings
from compressor.pipeline import compress_model
from compressor.recipe import Recipe
from compressor.target import Target

log = logging.getLogger("modelpress.job")


class JobCancelled(Exception):
    pass


# torch and onnxruntime report a failed allocation as RuntimeError, not MemoryError.
_NATIVE_OUT_OF_MEMORY = ("can't allocate memory", "not enough memory", "failed to allocate memory")


def _native_out_of_memory(exc: Exception) -> bool:
    message = str(exc).lower()
    return isinstance(exc, RuntimeError) and any(s in message for s in _NATIVE_OUT_OF_MEMORY)


def _out_of_memory_message(limit: int | None) -> str:
    where = f"the {limit / 1024**3:.1f} GiB each job may use here" if limit else "this machine"
    return f"the job ran out of memory ({where}); try a smaller model, batch or dataset"


def limit_memory(limit: int | None) -> None:
    """Cap the address space, so an oversized job fails with MemoryError in its own process."""
    if limit:
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))


def die_with_parent() -> None:
    """Linux: SIGKILL this process if its supervisor dies, so no orphan keeps computing."""
    try:
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except OSError:
        pass


class JobRun:
    def __init__(self, job_id: str, owner: str, workdir: Path) -> None:
        self.job_id = job_id
        self.owner = owner
        self.workdir = workdir
        self.last_phase = ""

    def progress(self, phase: str, fraction: float) -> None:
        with get_sessionmaker().begin() as session:
            moved = jobs_repository.transition(
                session,
                self.job_id,
                from_=[JobStatus.RUNNING],
                owner=self.owner,
                phase=phase[:128],
                progress=round(min(max(fraction, 0.0), 1.0), 4),
            )
            if not moved:
                raise JobCancelled
            job = jobs_repository.get(session, self.job_id)
            if job is None or job.cancel_requested:
                raise JobCancelled
            if phase != self.last_phase:
                jobs_repository.add_event(session, self.job_id, phase)
                self.last_phase = phase

    def finish(self, **values: Any) -> bool:
        with get_sessionmaker().begin() as session:
            done = jobs_repository.transition(
                session,
                self.job_id,
                from_=[JobStatus.RUNNING],
                owner=self.owner,
                finished_at=utcnow(),
                **values,
            )
            if done:
                level = "info" if values.get("status") == JobStatus.SUCCEEDED else "error"
                message = values.get("error") or f"job {values.get('status')}"
                jobs_repository.add_event(session, self.job_id, str(message), level)
            return done

    def fail(self, message: str) -> None:
        self.finish(status=JobStatus.FAILED, phase="failed", error=message)

    def load(self) -> tuple[Job, ModelFile]:
        with get_sessionmaker()() as session:
            job = jobs_repository.get(session, self.job_id)
            if job is None or job.worker != self.owner or job.status != JobStatus.RUNNING:
                raise JobCancelled
            model = session.get(ModelFile, job.model_id)
            if model is None:
                raise CompressionError("the model of this job was deleted")
            session.expunge_all()
            return job, model


def _job_data(job: Job, model: ModelFile, source: Path, workdir: Path) -> dict[str, Any]:
    """compress_model keyword arguments from the job's datasets (checked at submission)."""
    target = Target.model_validate(job.target)
    loaded: dict[str, Dataset] = {}
    for role, dataset_id in job.data.items():
        with get_sessionmaker()() as session:
            row = session.get(DatasetRow, dataset_id)
            if row is None:
                raise CompressionError(f"the {role} dataset {dataset_id} was deleted")
            key = row.storage_key
        path = workdir / f"dataset-{role}"
        get_storage().fetch_to(key, path)
        loaded[role] = read_dataset(path)

    def arrays(data: Dataset) -> dict[str, np.ndarray]:
        if data.arrays is not None:
            return data.arrays
        assert data.texts is not None
        names = [i["name"] for i in model.inspection.get("inputs", [])]
        tensors = tokenize_texts(
            load_tokenizer(source), data.texts, names, max_length=target.sequence_length
        )
        return tensors if data.labels is None else {**tensors, LABELS: data.labels}

    kwargs: dict[str, Any] = {}
    # Each set keeps its role; the engine holds out rows to measure on when no eval set is named.
    for role, keyword in (("calibration", "calibration_data"), ("eval", "eval_data")):
        if role in loaded:
            kwargs[keyword] = arrays(loaded[role])
    train = loaded.get("train")
    if train is not None:
        if train.texts is not None and train.labels is None:
            kwargs["train_texts"] = train.texts
        else:
            kwargs["train_data"] = arrays(train)
    return kwargs


def _unpack_model(model_id: str, dest: Path) -> Path:
    with get_sessionmaker()() as session:
        model = session.get(ModelFile, model_id)
        if model is None:
            raise CompressionError(f"the student model {model_id} was deleted")
        session.expunge(model)
    return unpack_for_job(model, dest)


def _zip_dir(folder: Path, dest: Path) -> tuple[int, str]:
    with zipfile.ZipFile(dest, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for path in sorted(folder.rglob("*")):
            if path.is_file():
                zf.write(path, path.relative_to(folder).as_posix())
    return dest.stat().st_size, sha256_file(dest)


def run(run: JobRun) -> None:
    settings = get_settings()
    job, model = run.load()
    run.progress("fetching model", 0.01)
    source = unpack_for_job(model, run.workdir / "input")
    data = _job_data(job, model, source, run.workdir)
    students = uploaded_students(job.recipe)
    if students:
        data["student_dir"] = _unpack_model(students[0], run.workdir / "student")
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
    run.progress("uploading artifact", 0.96)
    packed = result.report["compressed"].get("archive")
    if packed:  # the engine's .tar.xz: smallest download, unpacked by plain `tar xf`
        archive = run.workdir / "work" / str(packed["path"])
        size, sha256 = archive.stat().st_size, sha256_file(archive)
    else:
        archive = run.workdir / "artifact.zip"
        size, sha256 = _zip_dir(result.artifact_dir, archive)
    # Keyed by job id: a re-run overwrites instead of duplicating.
    key = artifact_key(job.id, archive.name)
    get_storage().put_file(key, archive)
    # Scratch files go before the job is marked done, so a finished job leaves nothing behind.
    shutil.rmtree(run.workdir, ignore_errors=True)
    artifact = {
        "bytes": size,
        "sha256": sha256,
        "format": result.artifact_format,
        "archive": archive_kind(archive.name),
    }
    finished = run.finish(
        status=JobStatus.SUCCEEDED,
        phase="done",
        progress=1.0,
        report={**result.report, "artifact": artifact},
        artifact_key=key,
        artifact_bytes=size,
        artifact_sha256=sha256,
        artifact_format=result.artifact_format,
    )
    if not finished:
        get_storage().delete(key)
        raise JobCancelled


def main(job_id: str, owner: str, workdir: str) -> int:
    die_with_parent()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    memory_limit = get_settings().worker.job_memory_bytes
    limit_memory(memory_limit)
    threads = get_settings().worker.worker_threads
    import torch

    torch.set_num_threads(threads)
    job_run = JobRun(job_id, owner, Path(workdir))
    try:
        run(job_run)
    except JobCancelled:
        return 3
    except StorageFull as exc:
        job_run.fail(str(exc))
    except CompressionError as exc:
        job_run.fail(str(exc))
    except MemoryError:
        job_run.fail(_out_of_memory_message(memory_limit))
    except OSError as exc:
        if exc.errno == errno.ENOSPC:
            job_run.fail("the worker's disk is full; the job stopped and left no artifact")
        else:
            log.exception("job %s failed", job_id)
            job_run.fail(
                f"internal error ({type(exc).__name__}); the service logs have the details"
            )
    except Exception as exc:
        if _native_out_of_memory(exc):
            log.warning("job %s ran out of memory: %s", job_id, exc)
            job_run.fail(_out_of_memory_message(memory_limit))
            return 0
        log.exception("job %s failed unexpectedly", job_id)
        job_run.fail(f"internal error ({type(exc).__name__}); the service logs have the details")
    return 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:4]))
