"""Why a job failed, in words for the person who submitted it.

Every way a job can fail is a ``JobError``; ``job_error_from`` is the one place an exception
or a process exit becomes one, and the lifecycle writes ``str(error)`` as the job's error.
"""

from __future__ import annotations

import errno
import signal

from app.storage.base import StorageFull
from compressor.errors import CompressionError

# torch and onnxruntime report a failed allocation as RuntimeError, not MemoryError.
_NATIVE_OUT_OF_MEMORY = ("can't allocate memory", "not enough memory", "failed to allocate memory")

# The job process exits with this code when it stopped because the job was cancelled.
CANCELLED_EXIT_CODE = 3


class JobError(Exception):
    """A job failure whose message is written for the user."""


class EngineError(JobError):
    """The engine refused the model, recipe or data; its own message says why."""


class OutOfMemory(JobError):
    def __init__(self, limit_bytes: int | None) -> None:
        where = (
            f"the {limit_bytes / 1024**3:.1f} GiB each job may use here"
            if limit_bytes
            else "this machine"
        )
        super().__init__(
            f"the job ran out of memory ({where}); try a smaller model, batch or dataset"
        )


class KilledOutOfMemory(JobError):
    def __init__(self) -> None:
        super().__init__(
            "the job process was killed (SIGKILL), most likely because the machine ran out of "
            "memory; try a smaller model or batch, or a worker with more memory"
        )


class TimeLimitExceeded(JobError):
    def __init__(self, limit_s: int) -> None:
        super().__init__(f"the job exceeded its time limit of {limit_s} s and was stopped")


class DiskFull(JobError):
    def __init__(self) -> None:
        super().__init__("the worker's disk is full; the job stopped and left no artifact")


class StorageFullError(JobError):
    """The artifact store is full; the storage backend's message says which."""


class ProcessCrashed(JobError):
    def __init__(self, exit_code: int) -> None:
        super().__init__(
            f"the job process crashed (exit code {exit_code}); the worker logs have details"
        )


class InternalError(JobError):
    def __init__(self, exc: BaseException) -> None:
        super().__init__(
            f"internal error ({type(exc).__name__}); the service logs have the details"
        )


class AttemptsExhausted(JobError):
    def __init__(self, attempts: int) -> None:
        super().__init__(f"the job was interrupted {attempts} times; giving up")


class WorkerLost(JobError):
    def __init__(self, attempts: int) -> None:
        super().__init__(f"the worker running this job was lost {attempts} times; giving up")


def is_native_out_of_memory(exc: BaseException) -> bool:
    message = str(exc).lower()
    return isinstance(exc, RuntimeError) and any(s in message for s in _NATIVE_OUT_OF_MEMORY)


def job_error_from(exc: BaseException, *, memory_limit: int | None) -> JobError:
    """The user's message for an exception raised while the job ran."""
    if isinstance(exc, JobError):
        return exc
    if isinstance(exc, StorageFull):
        return StorageFullError(str(exc))
    if isinstance(exc, CompressionError):
        return EngineError(str(exc))
    if isinstance(exc, MemoryError) or is_native_out_of_memory(exc):
        return OutOfMemory(memory_limit)
    if isinstance(exc, OSError) and exc.errno == errno.ENOSPC:
        return DiskFull()
    return InternalError(exc)


def job_error_from_exit(code: int) -> JobError | None:
    """The user's message for a job process that ended without settling its job itself."""
    if code in (0, CANCELLED_EXIT_CODE):
        return None
    if code == -signal.SIGKILL:
        return KilledOutOfMemory()
    return ProcessCrashed(code)
