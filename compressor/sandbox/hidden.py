"""Which paths the child must not see, and which of them need a mount of their own."""

from __future__ import annotations

import os
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path


def default_hidden(extra: Sequence[Path]) -> list[Path]:
    """`extra` plus the places on a host that hold other users' files, sockets and credentials:
    the system temp dir (other conversions' workdirs), /run and /var/run (the unix sockets of
    PostgreSQL, Redis, Docker), /dev/shm and the home folder. A candidate that holds Python or
    this code (a virtualenv in the home folder) is left visible, or nothing could run; missing
    ones are skipped. `extra` is returned as given: those are the caller's explicit choice."""
    code_root = Path(__file__).parents[2]  # the folder that holds the compressor package
    needed = [Path(sys.prefix), Path(sys.base_prefix), code_root]
    needed = [p.resolve() for p in needed]
    found = [Path(p) for p in extra]
    seen = {p.resolve() for p in found}
    for raw in (tempfile.gettempdir(), "/run", "/var/run", "/dev/shm", Path.home()):
        path = Path(raw)
        if not path.exists():
            continue
        real = path.resolve()
        if real in seen or any(real == p or real in p.parents for p in needed):
            continue
        seen.add(real)
        found.append(path)
    return found


def hidden_mounts(workdir: Path, hidden: list[Path]) -> list[Path]:
    """The mounts to make for `hidden` (resolved): existing paths, outermost first, leaving out
    those already covered by another (their mount point would not exist under its cover),
    except inside workdir, which is shown again and so needs them."""
    chosen: list[Path] = []
    for path in sorted(set(hidden), key=lambda p: len(p.parts)):
        if path == workdir:
            raise ValueError(f"the sandbox workdir {workdir} is itself a hidden path")
        if not os.path.lexists(path):
            continue
        shown_again = workdir in path.parents
        if any(q in path.parents and not (q in workdir.parents and shown_again) for q in chosen):
            continue
        chosen.append(path)
    return chosen
