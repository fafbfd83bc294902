"""The process that runs one job, supervised by the Celery task (execute.py): it decides
between a recipe (run here) and a goal (workers/search.py); the run itself is workers/job_run.py.

Running it in its own process lets the supervisor stop a job within seconds (cancel, time
limit), and tells an out-of-memory kill apart from a clean failure.
"""

from __future__ import annotations

import logging
import resource
import select
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
from sqlalchemy.orm import Session

from app.baselines.store import TenantBaselines
from app.datasets import repository as datasets_repository
from app.db.models import Job, JobPhase
from app.db.session import get_engine
from app.jobs.errors import CANCELLED_EXIT_CODE, InternalError, job_error_from
from app.settings import get_settings
from app.storage import get_storage
from compressor.datasets import job_inputs
from compressor.errors import CompressionError
from compressor.lifeline import die_with_parent
from compressor.llm.inspect import LLM_RUNTIMES
from compressor.pipeline import compress_model, measure_original
from compressor.recipe import Recipe
from compressor.target import Target
from workers.job_run import (
    JobCancelled,
    JobRun,
    in_transaction,
    measure_settings,
    publish,
    reading,
)
from workers.patience import patiently
from workers.priority import lower_priority
from workers.search import run_search
from workers.unpacking import fetch_upload

log = logging.getLogger("modelpress.job")


def limit_memory(limit: int | None) -> None:
    """Cap private data, so an oversized job fails with MemoryError in its own process.

    RLIMIT_DATA counts heap and anonymous mappings (what tensors and arrays take), not the
    shared libraries: torch's CUDA build maps over 3 GiB of address space before a job starts.
    """
    if limit:
        resource.setrlimit(resource.RLIMIT_DATA, (limit, limit))


def _dataset_key(dataset_id: str) -> str | None:
    def read(session: Session) -> str | None:
        row = datasets_repository.get(session, dataset_id)
        return row.storage_key if row is not None else None

    return reading(f"reading dataset {dataset_id}", read)


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
    inputs = run.load()
    job, model = inputs.job, inputs.model
    run.progress(JobPhase.FETCHING_MODEL, 0.01)
    source = fetch_upload(model.storage_key, model.sha256, run.workdir / "input")
    data = _job_data(job, source, run.workdir)
    target = Target.model_validate(job.target)
    # The original's figures, kept for this tenant: a goal's children and later jobs on the
    # same model and target reuse them instead of measuring the original again.
    baselines = TenantBaselines(job.tenant, model_sha256=model.sha256, transact=in_transaction)
    if job.goal is not None:
        original = None
        if target.runtime not in LLM_RUNTIMES:
            # Once, here, before the candidates fan out: they reuse it, none measures it while
            # another does, and it is timed while this worker has nothing else to do.
            original = measure_original(
                source,
                target=target,
                workdir=run.workdir / "original",
                settings=measure_settings(),
                baselines=baselines,
                progress=lambda phase, fraction: run.progress(phase, fraction * 0.04),
                **data,
            )
        run_search(run, inputs, original)
        return
    if inputs.students:
        student = inputs.students[0]
        data["student_dir"] = fetch_upload(
            student.storage_key, student.sha256, run.workdir / "student"
        )
    result = compress_model(
        source,
        Recipe.model_validate(job.recipe),
        target=target,
        workdir=run.workdir / "work",
        settings=measure_settings(),
        progress=lambda phase, fraction: run.progress(phase, fraction * 0.95),
        # The engine packs once with its report.json inside; the recipe travels beside it, so
        # a downloaded model says how it was made and the recipe can be resubmitted as it is.
        documents={"recipe.json": job.recipe},
        baselines=baselines,
        **data,
    )
    run.progress(JobPhase.UPLOADING, 0.96)
    # The engine's archive is the download: stored as it is, never packed again.
    publish(run, job, result.archive, report=result.report, artifact_format=result.artifact_format)


def warm() -> bool:
    """What a job spends its first seconds on, done before it arrives (issue 24): the engine's
    imports (this module's, transformers) and the exporter's first export, whose tracing
    machinery costs seconds once per process. A job that arrives meanwhile stops the rest
    (False: not warmed): warming for it would only delay it. The warming is speculative, so it
    runs at a lower CPU priority where the process may raise it back afterwards. It runs once
    per fork server (workers/job_process_forks.py), whose job processes inherit it."""
    with lower_priority():
        return _warm()


def _warm() -> bool:
    import torch

    # One thread: the fork server must not start a thread pool its children would inherit.
    torch.set_num_threads(1)
    if _job_waiting():
        return False
    # `import transformers` alone loads almost nothing (its modules load lazily, on first
    # use): what every model class and tokenizer imports is named, 3 s of a job's "loading"
    # phase on all-MiniLM-L6-v2 otherwise (0.4 s after it). ONNX Runtime's quantizers too.
    import onnxruntime.quantization  # noqa: F401
    import transformers.modeling_utils  # noqa: F401
    import transformers.tokenization_utils_fast  # noqa: F401

    if _job_waiting():
        return False
    from compressor.formats.onnx_io import export_onnx

    module = torch.nn.Sequential(torch.nn.Linear(4, 4), torch.nn.ReLU())
    with tempfile.TemporaryDirectory(prefix="modelpress-warm-") as tmp:
        example = {"x": np.zeros((2, 4), dtype=np.float32)}
        export_onnx(module, example, Path(tmp) / "warm.onnx", output_name="y")
    return True


def _job_waiting() -> bool:
    """A request has reached the fork server (or its supervisor closed the pipe)."""
    return bool(select.select([sys.stdin], [], [], 0)[0])


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
