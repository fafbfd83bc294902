"""Scratch folders of jobs whose worker was SIGKILLed (its own cleanup never ran) are swept by
maintenance once the job is no longer running; a running job's folder, or a fresh one, stays."""

from __future__ import annotations

import os
import time
from pathlib import Path

from app.db.models import JobStatus, ModelFile, new_id
from app.settings import get_settings
from tests.workers.conftest import add_job, session
from workers.maintenance import SCRATCH_GRACE_S, sweep_scratch


def _model() -> str:
    with session() as s, s.begin():
        model = ModelFile(id=new_id(), filename="m.onnx", format="onnx", size_bytes=1,
                          sha256="0" * 64, storage_key="models/x/upload")  # fmt: skip
        s.add(model)
    return model.id


def _scratch(job_id: str, *, age_s: float) -> Path:
    folder = get_settings().tmp_dir / f"job-{job_id}-abc123"
    (folder / "input").mkdir(parents=True)
    (folder / "input" / "model.onnx").write_bytes(b"partial")
    old = time.time() - age_s
    os.utime(folder, (old, old))
    return folder


def test_only_folders_of_jobs_not_running_are_swept(db: Path) -> None:
    model_id = _model()
    cancelled = _scratch(add_job(model_id=model_id, status=JobStatus.CANCELLED), age_s=600)
    running = _scratch(add_job(model_id=model_id, status=JobStatus.RUNNING), age_s=600)
    fresh = _scratch(add_job(model_id=model_id, status=JobStatus.FAILED), age_s=1)
    orphan = _scratch(new_id(), age_s=SCRATCH_GRACE_S + 5)  # its job row is gone

    removed = sweep_scratch()

    assert sorted(removed) == sorted([cancelled.name, orphan.name])
    assert not cancelled.exists() and not orphan.exists()
    assert running.exists() and fresh.exists()
