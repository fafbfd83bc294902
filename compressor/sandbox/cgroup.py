"""A cgroup v2 of its own for each sandbox, where the service may make one: memory, processes
and CPU summed over everything the loaded code starts, which per-process limits do not bound.
Where it cannot (cgroup v1, a read-only /sys/fs/cgroup, no delegated subtree), the sandbox
runs without one; seccomp and RLIMIT_NPROC still keep it to one process."""

from __future__ import annotations

import logging
import os
import uuid
from pathlib import Path

log = logging.getLogger(__name__)

_ROOT = Path("/sys/fs/cgroup")
_CPU_PERIOD_US = 100_000


def _own_cgroup() -> Path | None:
    for line in Path("/proc/self/cgroup").read_text().splitlines():
        if line.startswith("0::"):
            return _ROOT / line[3:].lstrip("/")
    return None


def make_cgroup(memory_bytes: int, max_processes: int, cpus: float = 1.0) -> Path | None:
    """A new cgroup beside the service's own, with its limits set; None where none can be had
    (the reason is logged once per call)."""
    try:
        own = _own_cgroup()
        controllers = (own / "cgroup.controllers").read_text().split() if own else []
        if own is None or not {"memory", "pids"} <= set(controllers):
            raise OSError("no cgroup v2 with the memory and pids controllers")
        path = own / f"modelpress-sandbox-{uuid.uuid4().hex[:12]}"
        path.mkdir()
    except OSError as exc:
        log.info("sandbox runs without a cgroup: %s", exc)
        return None
    try:
        (path / "memory.max").write_text(str(memory_bytes))
        if (path / "memory.swap.max").exists():
            (path / "memory.swap.max").write_text("0")
        (path / "pids.max").write_text(str(max_processes))
        if (path / "cpu.max").exists():
            (path / "cpu.max").write_text(f"{int(cpus * _CPU_PERIOD_US)} {_CPU_PERIOD_US}")
    except OSError as exc:
        log.info("sandbox runs without a cgroup: its limits cannot be set (%s)", exc)
        remove_cgroup(path)
        return None
    return path


def join_cgroup(path: str) -> None:
    """Called by the sandbox's first process, before it starts any other."""
    with open(os.path.join(path, "cgroup.procs"), "w") as fh:
        fh.write(str(os.getpid()))


def remove_cgroup(path: Path) -> None:
    try:
        path.rmdir()
    except OSError as exc:  # a process still in it: the kernel keeps it until that one ends
        log.warning("sandbox cgroup %s not removed: %s", path, exc)
