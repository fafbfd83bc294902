"""One artifact per attempt: an attempt that lost the job, finishing late, cannot overwrite
or delete the artifact of the attempt that succeeded (issue 12, item 8)."""

from __future__ import annotations

from pathlib import Path

import pytest

from app.db.models import JobStatus
from app.jobs import repository as jobs_repository
from app.storage import get_storage
from compressor.artifacts import ArchiveFormat, PackedFile
from compressor.digest import sha256_file
from tests.workers.conftest import add_job, session
from workers.execute import claim, drop_attempt_artifacts, execute_job
from workers.job_process import JobCancelled, JobRun, publish

# A runner on this node whose process has died: the next delivery of the job takes over.
DEAD_RUNNER = f"cpu@test|{2**22 + 17}"


def test_a_stale_attempt_leaves_the_winners_artifact(db: Path, digits_model: str) -> None:
    job_id = add_job(model_id=digits_model)
    assert claim(job_id, DEAD_RUNNER) is not None
    stale = JobRun(job_id, DEAD_RUNNER, db / "stale")
    job = stale.load().job  # attempt 1 holds the job and starts compressing...

    execute_job(job_id, node="cpu@test")  # ...attempt 2 takes over and succeeds
    with session() as s:
        row = jobs_repository.get(s, job_id)
        assert row is not None and row.status == JobStatus.SUCCEEDED and row.attempts == 2
        key, sha256 = row.artifact_key, row.artifact_sha256
    assert key is not None

    # Attempt 1 finishes late with an archive of its own (of the same kind: same model, same
    # recipe), and finds the job no longer its.
    archive = db / "stale" / key.rsplit("/", 1)[-1]
    archive.parent.mkdir(parents=True)
    archive.write_bytes(b"attempt 1 output")
    packed = PackedFile(archive, ArchiveFormat.ZIP, archive.stat().st_size, sha256_file(archive))
    with pytest.raises(JobCancelled):
        publish(stale, job, packed, report={}, artifact_format="onnx")

    drop_attempt_artifacts(job_id, 1)  # what attempt 1's supervisor does as it ends

    fetched = db / "fetched"
    get_storage().fetch_to(key, fetched)
    assert sha256_file(fetched) == sha256
