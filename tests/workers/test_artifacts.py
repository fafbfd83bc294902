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


def test_a_goal_job_adopts_its_candidates_artifact_by_a_copy_in_the_store(
    db: Path, digits_model: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Issue 24: no download, no re-hash, no upload: one copy inside the store."""
    from workers import job_run

    child_id = add_job(model_id=digits_model)
    execute_job(child_id, node="cpu@test")
    with session() as s:
        child = jobs_repository.get(s, child_id)
        assert child is not None and child.status == JobStatus.SUCCEEDED
        s.expunge(child)
    goal_id = add_job(model_id=digits_model)
    assert claim(goal_id, DEAD_RUNNER) is not None
    run = JobRun(goal_id, DEAD_RUNNER, db / "goal")
    job = run.load().job

    store = get_storage()
    calls: list[str] = []

    class Recording:
        def __getattr__(self, name: str) -> object:
            calls.append(name)
            return getattr(store, name)

    monkeypatch.setattr(job_run, "get_storage", Recording)
    assert child.recipe is not None and child.report is not None
    job_run.publish_copy(run, job, child, report=child.report, recipe=child.recipe)
    assert calls == ["copy"]

    with session() as s:
        adopted = jobs_repository.get(s, goal_id)
        assert adopted is not None and adopted.status == JobStatus.SUCCEEDED
        assert adopted.recipe == child.recipe
        assert adopted.artifact_key != child.artifact_key
        key, sha256, size = adopted.artifact_key, adopted.artifact_sha256, adopted.artifact_bytes
    assert (sha256, size) == (child.artifact_sha256, child.artifact_bytes)
    assert key is not None
    fetched = db / "adopted"
    store.fetch_to(key, fetched)
    assert sha256_file(fetched) == sha256 and fetched.stat().st_size == size
