"""Unpacked model uploads kept on this worker's disk (issue 24): a goal's candidates and later
jobs on the same upload skip fetching and unpacking it (2.6 s of a MiniLM job).

An entry is the upload unpacked once, keyed by the upload's sha256 (its content: the same bytes
uploaded twice unpack the same), under ``{data_dir}/cache/models/{sha256}``. A job gets hard
links to its files in its own scratch folder: what the job writes there (new files) stays
there, and evicting an entry leaves running jobs' links intact. Entries appear by an atomic
rename of a finished folder, so a concurrent job sees a whole entry or none. Past
``MODELPRESS_MODEL_CACHE_BYTES`` the least recently used entries go; maintenance drops those
whose upload no model row holds any more (a deleted model does not linger here).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
import time
import uuid
from collections.abc import Callable, Iterable
from pathlib import Path

log = logging.getLogger("modelpress.model_cache")

MARKER = "entry.json"  # written last, inside the folder renamed into place
Unpack = Callable[[Path], Path]  # unpacks the upload into the folder given; returns its root


def linked_model(cache: Path, sha256: str, dest: Path, *, unpack: Unpack, limit: int) -> Path:
    """The upload ``sha256`` as a model folder under ``dest`` (its root is returned), from the
    cache where it has the entry, else unpacked by ``unpack`` and kept (``limit`` > 0)."""
    if limit <= 0:
        return unpack(dest)
    entry = cache / sha256
    try:
        root = _root_of(entry) if (entry / MARKER).is_file() else _add(cache, entry, unpack)
        os.utime(entry / MARKER)  # most recently used
        linked = _link_tree(entry / "files", dest)
    except (OSError, ValueError):  # evicted meanwhile, a full disk, another file system
        log.warning("model cache entry %s unusable; unpacking for this job", sha256, exc_info=True)
        shutil.rmtree(dest, ignore_errors=True)
        return unpack(dest)
    evict(cache, limit=limit, keep=sha256)
    return linked / root


def _root_of(entry: Path) -> str:
    root = json.loads((entry / MARKER).read_text())["root"]
    if not isinstance(root, str) or Path(root).is_absolute() or ".." in Path(root).parts:
        raise ValueError(f"bad root in {entry / MARKER}")
    return root


def _add(cache: Path, entry: Path, unpack: Unpack) -> str:
    cache.mkdir(parents=True, exist_ok=True)
    building = cache / f".building-{entry.name}-{uuid.uuid4().hex}"
    try:
        files = building / "files"
        root = unpack(files).relative_to(files)
        size = sum(p.stat().st_size for p in files.rglob("*") if p.is_file())
        (building / MARKER).write_text(json.dumps({"root": str(root), "bytes": size}))
        try:
            building.rename(entry)
        except OSError:  # another job of this worker added it first: theirs serves
            if not (entry / MARKER).is_file():
                raise
    finally:
        shutil.rmtree(building, ignore_errors=True)
    return _root_of(entry)


def _link_tree(src: Path, dest: Path) -> Path:
    """``src``'s files hard-linked under ``dest`` (a copy where links cannot be made)."""

    def link(a: str, b: str) -> None:
        try:
            os.link(a, b)
        except OSError:
            shutil.copy2(a, b)

    shutil.copytree(src, dest, copy_function=link, dirs_exist_ok=True)
    return dest


def _entries(cache: Path) -> list[tuple[float, int, Path]]:
    """(last use, bytes, folder) of each whole entry."""
    found = []
    for marker in cache.glob(f"*/{MARKER}"):
        try:
            size = int(json.loads(marker.read_text())["bytes"])
            found.append((marker.stat().st_mtime, size, marker.parent))
        except (OSError, ValueError, KeyError):
            continue
    return found


def evict(cache: Path, *, limit: int, keep: str | None = None) -> list[str]:
    """Remove the least recently used entries until the rest fit in ``limit`` bytes."""
    total, removed = 0, []
    for _, size, folder in sorted(_entries(cache), reverse=True):  # the newest kept first
        if total + size > limit and folder.name != keep:
            _remove(folder)
            removed.append(folder.name)
        else:
            total += size
    return removed


def drop_unlisted(cache: Path, held: Iterable[str], *, grace_s: float = 3600) -> list[str]:
    """Remove the entries of uploads no model row holds any more, and folders left half-built
    or half-removed by a killed job (older than ``grace_s``)."""
    keep = set(held)
    removed = [f.name for _, _, f in _entries(cache) if f.name not in keep]
    for name in removed:
        _remove(cache / name)
    cutoff = time.time() - grace_s
    for leftover in cache.glob(".*-*"):
        with contextlib.suppress(OSError):
            if leftover.stat().st_mtime < cutoff:
                shutil.rmtree(leftover, ignore_errors=True)
                removed.append(leftover.name)
    return removed


def _remove(folder: Path) -> None:
    # Renamed away first: a job never links from a half-deleted entry.
    doomed = folder.with_name(f".removing-{folder.name}-{uuid.uuid4().hex}")
    try:
        folder.rename(doomed)
    except OSError:
        return
    shutil.rmtree(doomed, ignore_errors=True)
