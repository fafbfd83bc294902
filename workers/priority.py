"""Run speculative work at a lower CPU priority, when the priority can be raised back after.

Lowering a process's priority (raising its nice value) is always allowed; raising it back needs
root, CAP_SYS_NICE or an RLIMIT_NICE that permits it. Where it cannot be raised back, nothing is
lowered: the process goes on to run a job, which must not run behind other jobs."""

from __future__ import annotations

import contextlib
import os
import resource
from collections.abc import Iterator

WARM_NICE = 10


def _can_restore(nice: int) -> bool:
    if os.geteuid() == 0:
        return True
    soft, _hard = resource.getrlimit(resource.RLIMIT_NICE)
    # RLIMIT_NICE r lets a process lower its nice value down to 20 - r.
    return soft == resource.RLIM_INFINITY or 20 - soft <= nice


@contextlib.contextmanager
def lower_priority(by: int = WARM_NICE) -> Iterator[None]:
    before = os.getpriority(os.PRIO_PROCESS, 0)
    lowered = False
    if _can_restore(before):
        with contextlib.suppress(OSError):
            os.setpriority(os.PRIO_PROCESS, 0, min(19, before + by))
            lowered = True
    try:
        yield
    finally:
        if lowered:
            with contextlib.suppress(OSError):
                os.setpriority(os.PRIO_PROCESS, 0, before)


__all__ = ["lower_priority"]
