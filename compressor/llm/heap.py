"""Hand freed heap memory back to the system between the big steps of an LLM job.

glibc serves allocations below its mmap threshold from the heap, and raises that threshold
(up to 32 MiB) each time a larger mapped block is freed, so after the first layers most tensor
buffers live on the heap; freed, they stay in the process, and in the job's measured memory,
until something trims it. ``trim`` is that something; a no-op off glibc."""

from __future__ import annotations

import ctypes
import ctypes.util
import gc
from functools import cache
from typing import Any


@cache
def _libc() -> Any:
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name) if name else None
    except OSError:
        return None
    return libc if libc is not None and hasattr(libc, "malloc_trim") else None


def trim() -> None:
    gc.collect()
    libc = _libc()
    if libc is not None:
        libc.malloc_trim(0)


__all__ = ["trim"]
