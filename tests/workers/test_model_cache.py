"""The workers' cache of unpacked model uploads (issue 24): a later job on the same upload
links the files unpacked for an earlier one instead of fetching and unpacking them again."""

from __future__ import annotations

import os
from pathlib import Path

from app.db.models import JobStatus, ModelFile
from app.jobs import repository as jobs_repository
from app.models_upload import repository as models_repository
from app.settings import get_settings
from app.storage import get_storage
from tests.workers.conftest import add_job, session
from workers.execute import execute_job
from workers.maintenance import sweep_model_cache
from workers.model_cache import MARKER, evict, linked_model

MB = 1 << 20


class Unpacker:
    """Writes a model folder of ``size`` bytes, as fetching and unpacking an upload would."""

    def __init__(self, size: int = MB) -> None:
        self.size, self.calls = size, 0

    def __call__(self, folder: Path) -> Path:
        self.calls += 1
        root = folder / "model"
        root.mkdir(parents=True)
        (root / "model.onnx").write_bytes(os.urandom(self.size))
        return root


def test_a_second_use_links_the_files_unpacked_once(tmp_path: Path) -> None:
    cache, unpack = tmp_path / "cache", Unpacker()
    first = linked_model(cache, "a" * 64, tmp_path / "job1", unpack=unpack, limit=10 * MB)
    second = linked_model(cache, "a" * 64, tmp_path / "job2", unpack=unpack, limit=10 * MB)
    assert unpack.calls == 1
    assert first.relative_to(tmp_path / "job1") == second.relative_to(tmp_path / "job2")
    one, two = first / "model.onnx", second / "model.onnx"
    assert one.read_bytes() == two.read_bytes()
    assert one.stat().st_ino == two.stat().st_ino  # hard links: no second copy on disk
    # What a job adds to its folder stays its own.
    (second / "original.onnx").write_bytes(b"x")
    assert not (first / "original.onnx").exists()
    assert not list(cache.glob("*/files/**/original.onnx"))


def test_least_recently_used_entries_go_past_the_limit_and_running_jobs_keep_theirs(
    tmp_path: Path,
) -> None:
    cache, unpack = tmp_path / "cache", Unpacker(MB)
    used_first = linked_model(cache, "a" * 64, tmp_path / "j1", unpack=unpack, limit=3 * MB)
    linked_model(cache, "b" * 64, tmp_path / "j2", unpack=unpack, limit=3 * MB)
    linked_model(cache, "a" * 64, tmp_path / "j3", unpack=unpack, limit=3 * MB)  # a: newer
    os.utime(cache / ("b" * 64) / MARKER, (1, 1))  # b: clearly the older use
    linked_model(cache, "c" * 64, tmp_path / "j4", unpack=unpack, limit=2 * MB + MB // 2)
    assert sorted(p.name[0] for p in cache.iterdir()) == ["a", "c"]
    assert (used_first / "model.onnx").stat().st_size == MB  # the job's links outlive eviction
    assert evict(cache, limit=0, keep="c" * 64) == ["a" * 64]
    assert unpack.calls == 3


def test_without_a_cache_every_job_unpacks(tmp_path: Path) -> None:
    cache, unpack = tmp_path / "cache", Unpacker()
    for n in range(2):
        linked_model(cache, "a" * 64, tmp_path / f"job{n}", unpack=unpack, limit=0)
    assert unpack.calls == 2 and not cache.exists()


def test_a_later_job_runs_from_the_cache_and_a_deleted_models_entry_goes(
    db: Path, digits_model: str
) -> None:
    first = add_job(model_id=digits_model)
    execute_job(first, node="cpu@test")
    with session() as s:
        model = s.get(ModelFile, digits_model)
        assert model is not None
        key, entry = model.storage_key, get_settings().model_cache_dir / model.sha256
    assert (entry / MARKER).is_file()
    # The stored upload is now unreadable: only the cached files can serve the next job.
    get_storage().delete(key)
    second = add_job(model_id=digits_model)
    execute_job(second, node="cpu@test")
    with session() as s:
        for job_id in (first, second):
            job = jobs_repository.get(s, job_id)
            assert job is not None and job.status == JobStatus.SUCCEEDED, job and job.error
    with session() as s, s.begin():
        model = s.get(ModelFile, digits_model)
        assert model is not None
        models_repository.delete(s, model)
    assert sweep_model_cache() == [entry.name]
    assert not entry.exists()
