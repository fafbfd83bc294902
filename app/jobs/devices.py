"""Which device a job runs on: 'auto' resolved, and 'gpu' refused when no GPU is live.

Both submission paths (a recipe, a goal) use it; each says what "can run there" means for it.
"""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy.orm import Session

from app import errors
from app.broker import QueueName
from app.pools.repository import live_workers
from app.settings import get_settings
from compressor.target import Target


class DeviceUnavailable(errors.AppError):
    status, slug, title = 422, "device-unavailable", "The target device is not available"


def gpu_refusal(session: Session) -> str | None:
    """Why no job can run on a GPU now, or None when a live gpu-pool worker reports one."""
    stale = get_settings().worker.stale_after_s
    pool = [n for n in live_workers(session, stale_after_s=stale) if QueueName.GPU in n.queues]
    if any(n.gpu_name for n in pool):
        return None
    if not pool:
        return f"no live worker serves the {QueueName.GPU.value!r} pool"
    names = ", ".join(n.name for n in pool)
    return f"no live worker on the {QueueName.GPU.value!r} pool reports a GPU ({names}: none)"


def require_gpu(session: Session) -> None:
    # Refused now rather than queued: a job must never be measured on a CPU and called a GPU's.
    reason = gpu_refusal(session)
    if reason is not None:
        raise DeviceUnavailable(
            f"target.device 'gpu' cannot run here: {reason}; submit with device 'cpu' or "
            "'auto', or start a worker with --queues gpu on a machine with a CUDA GPU",
            reason=reason,
        )


def resolve_device(
    session: Session, target: Target, *, runs_on: Callable[[Target], bool]
) -> Target:
    """'auto' becomes the device the job runs on, so routing and the report agree.

    The GPU pool only when a live worker there reports a GPU and the job can run there
    (``runs_on``): a CPU-only scheme such as int8_dynamic stays on the CPU pool instead of
    bypassing its refusal.
    """
    if target.device != "auto":
        return target
    gpu = target.model_copy(update={"device": "gpu"})
    if gpu_refusal(session) is None and runs_on(gpu):
        return gpu
    return target.model_copy(update={"device": "cpu"})
