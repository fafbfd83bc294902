"""Running one job: claim the row, compress, store the artifact, finish the row. Exactly once."""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import socket
import tempfile
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from app.db.models import Dataset as DatasetRow
from app.db.models import Job, JobStatus, ModelFile, utcnow
from app.db.session import get_sessionmaker
from app.jobs import repository as jobs_repository
from app.models_upload.service import unpack_for_job
from app.settings import get_settings
from app.storage import get_storage
from app.storage.base import StorageFull
from compressor.datasets import Dataset, read_dataset, tokenize_texts
from compressor.errors import CompressionError
from compressor.formats.hf import load_tokenizer
from compressor.inputs import LABELS
from compressor.measure.settings import MeasureSettings
from compressor.pipeline import compress_model
from compressor.recipe import Recipe
from compressor.target import Target

log = logging.getLogger("modelpress.worker")


class JobCancelled(Exception):
    pass


def _worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def _claim(job_id: str) -> tuple[Job, ModelFile] | None:
    """queued -> running. A redelivered message for a job already running here is claimed again."""
    with get_sessionmaker().begin() as session:
        job = jobs_repository.get(session, job_id)
        if job is None or job.status not in (JobStatus.QUEUED, JobStatus.RUNNING):
            return None
        claimed = jobs_repository.transition(
            session,
            job_id,
            from_=[job.status],
            status=JobStatus.RUNNING,
            phase="starting",
            progress=0.0,
            started_at=utcnow(),
            worker=_worker_name(),
            attempts=job.attempts + 1,
        )
        if not claimed:
            return None
        session.refresh(job)
        model = session.get(ModelFile, job.model_id)
        if model is None:
            return None
        session.expunge(job)
        session.expunge(model)
        return job, model


def _report_progress(job_id: str, phase: str, fraction: float) -> None:
    with get_sessionmaker().begin() as session:
        jobs_repository.transition(
            session,
            job_id,
            from_=[JobStatus.RUNNING],
            phase=phase[:128],
            progress=round(fraction, 4),
        )
        job = jobs_repository.get(session, job_id)
        if job is None or job.cancel_requested or job.status != JobStatus.RUNNING:
            raise JobCancelled


def _finish(job_id: str, **values: Any) -> bool:
    with get_sessionmaker().begin() as session:
        return jobs_repository.transition(
            session, job_id, from_=[JobStatus.RUNNING], finished_at=utcnow(), **values
        )


def _zip_dir(folder: Path, dest: Path) -> tuple[int, str]:
    with zipfile.ZipFile(dest, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for path in sorted(folder.rglob("*")):
            if path.is_file():
                zf.write(path, path.relative_to(folder).as_posix())
    digest = hashlib.sha256()
    with dest.open("rb") as fh:
        while chunk := fh.read(1024 * 1024):
            digest.update(chunk)
    return dest.stat().st_size, digest.hexdigest()


def execute_job(job_id: str) -> None:
    claimed = _claim(job_id)
    if claimed is None:
        log.info("job %s is not runnable (missing, cancelled or finished); skipping", job_id)
        return
    job, model = claimed
    settings = get_settings()
    settings.tmp_dir.mkdir(parents=True, exist_ok=True)
    workdir = Path(tempfile.mkdtemp(dir=settings.tmp_dir, prefix=f"job-{job_id}-"))
    try:
        _run(job, model, workdir)
    except JobCancelled:
        with get_sessionmaker().begin() as session:
            jobs_repository.transition(
                session,
                job_id,
                from_=[JobStatus.RUNNING],
                status=JobStatus.CANCELLED,
                phase="cancelled",
                finished_at=utcnow(),
            )
        log.info("job %s cancelled", job_id)
    except StorageFull as exc:
        _finish(job_id, status=JobStatus.FAILED, phase="failed", error=str(exc))
    except CompressionError as exc:
        _finish(job_id, status=JobStatus.FAILED, phase="failed", error=str(exc))
    except MemoryError:
        _finish(
            job_id,
            status=JobStatus.FAILED,
            phase="failed",
            error="the job ran out of memory; try a smaller batch or a machine with more memory",
        )
    except Exception as exc:
        log.exception("job %s failed unexpectedly", job_id)
        _finish(
            job_id,
            status=JobStatus.FAILED,
            phase="failed",
            error=f"internal error ({type(exc).__name__}); the service logs have the details",
        )
        raise
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def _job_data(job: Job, model: ModelFile, source: Path, workdir: Path) -> dict[str, Any]:
    """compress_model keyword arguments from the job's datasets (already checked at submission)."""
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
    # Calibration data stands in for evaluation when no separate eval set is named.
    evaluation = loaded.get("eval") or loaded.get("calibration")
    if evaluation is not None:
        kwargs["eval_data"] = arrays(evaluation)
    train = loaded.get("train")
    if train is not None:
        if train.texts is not None and train.labels is None:
            kwargs["train_texts"] = train.texts
        else:
            kwargs["train_data"] = arrays(train)
    return kwargs


def _run(job: Job, model: ModelFile, workdir: Path) -> None:
    settings = get_settings()
    _report_progress(job.id, "fetching model", 0.01)
    source = unpack_for_job(model, workdir / "input")
    data = _job_data(job, model, source, workdir)
    measure = MeasureSettings(
        threads=settings.worker.worker_threads,
        warmup=settings.worker.measure_warmup,
        iterations=settings.worker.measure_iterations,
    )
    result = compress_model(
        source,
        Recipe.model_validate(job.recipe),
        target=Target.model_validate(job.target),
        workdir=workdir / "work",
        settings=measure,
        progress=lambda phase, fraction: _report_progress(job.id, phase, fraction * 0.95),
        **data,
    )
    _report_progress(job.id, "uploading artifact", 0.96)
    archive = workdir / "artifact.zip"
    size, sha256 = _zip_dir(result.artifact_dir, archive)
    # Keyed by job id: a re-run overwrites instead of duplicating.
    key = f"artifacts/{job.id}/artifact.zip"
    get_storage().put_file(key, archive)
    artifact = {"bytes": size, "sha256": sha256, "format": result.artifact_format}
    report = {**result.report, "artifact": artifact}
    finished = _finish(
        job.id,
        status=JobStatus.SUCCEEDED,
        phase="done",
        progress=1.0,
        report=report,
        artifact_key=key,
        artifact_bytes=size,
        artifact_sha256=sha256,
        artifact_format=result.artifact_format,
    )
    if not finished:
        get_storage().delete(key)
        raise JobCancelled
