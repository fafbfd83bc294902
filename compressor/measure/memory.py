"""Memory of a process and everything it started, as Linux accounts it.

PSS (proportional set size) splits each shared page among the processes that map it, so summing
it over a process tree neither misses a worker's private memory nor counts a shared library once
per process, as summed RSS would. Where /proc/<pid>/smaps_rollup cannot be read (another user's
process, a kernel older than 4.14, not Linux) the reading falls back to RSS and says so.
"""

from __future__ import annotations

import os
import threading
from dataclasses import asdict, dataclass
from types import TracebackType
from typing import Any

import psutil


@dataclass(frozen=True)
class TreeMemory:
    bytes: int
    source: str  # "pss", or "rss" when any process of the tree had to be read as RSS
    processes: int

    def as_json(self) -> dict[str, Any]:
        return asdict(self)


class _Exited(Exception):
    """The process exited (or is a zombie, which has no memory left) while the tree was read."""


def _pss_bytes(pid: int) -> int | None:
    """PSS of ``pid``; None where the kernel does not let us read it (another user's process,
    no smaps_rollup); _Exited where the process is gone or a zombie."""
    try:
        with open(f"/proc/{pid}/smaps_rollup") as rollup:
            for line in rollup:
                if line.startswith("Pss:"):
                    return int(line.split()[1]) * 1024  # the kernel writes kB
    except (ProcessLookupError, FileNotFoundError) as gone:
        # A zombie's smaps_rollup answers ESRCH; falling back to RSS there would mark the
        # whole reading "rss" for a process that holds nothing.
        raise _Exited from gone
    except OSError:
        return None
    return None


def tree_memory(pid: int | None = None) -> TreeMemory:
    """PSS summed over ``pid`` (default: this process) and all its descendants."""
    try:
        root = psutil.Process(pid or os.getpid())
        tree = [root, *root.children(recursive=True)]
    except psutil.NoSuchProcess:  # a watched process that has exited holds nothing
        return TreeMemory(bytes=0, source="pss", processes=0)
    total = 0
    source = "pss"
    counted = 0
    for proc in tree:
        try:
            pss = _pss_bytes(proc.pid)
        except _Exited:
            continue
        if pss is None:
            try:
                pss = proc.memory_info().rss
            except psutil.Error:  # it exited between the listing and the reading
                continue
            source = "rss"
        total += pss
        counted += 1
    return TreeMemory(bytes=total, source=source, processes=counted)


def process_tree_pss(pid: int | None = None) -> int:
    """Bytes of PSS of ``pid`` (default: this process) and its descendants; see tree_memory()
    for whether it fell back to RSS."""
    return tree_memory(pid).bytes


class PeakMemory:
    """``with PeakMemory() as peak: ...`` then ``peak.peak_bytes``: the highest tree memory a
    daemon thread saw, sampling every ``interval_s``, plus one reading at entry and at exit.
    A peak shorter than the interval can be missed."""

    def __init__(self, pid: int | None = None, *, interval_s: float = 0.1) -> None:
        self.pid = pid
        self.interval_s = interval_s
        self.peak_bytes = 0
        self.baseline_bytes = 0
        self.samples = 0
        self.source = "pss"
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def _sample(self) -> None:
        reading = tree_memory(self.pid)
        self.samples += 1
        self.peak_bytes = max(self.peak_bytes, reading.bytes)
        if reading.source == "rss":
            self.source = "rss"

    def _run(self) -> None:
        while not self._stop.wait(self.interval_s):
            self._sample()

    def __enter__(self) -> PeakMemory:
        self._sample()
        self.baseline_bytes = self.peak_bytes
        self._thread = threading.Thread(target=self._run, name="peak-memory", daemon=True)
        self._thread.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        self._sample()

    def as_json(self) -> dict[str, Any]:
        return {
            "peak_bytes": self.peak_bytes,
            "baseline_bytes": self.baseline_bytes,
            "samples": self.samples,
            "source": self.source,
            "interval_s": self.interval_s,
        }
