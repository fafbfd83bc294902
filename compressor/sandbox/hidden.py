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


def closed_ancestor(path: Path) -> Path | None:
    """The outermost folder above `path` that others cannot search (root's home, pytest's
    temp root): the unprivileged uid the sandbox runs as when the service is root cannot get
    past it."""
    for parent in reversed(path.parents):
        if parent != Path("/") and not parent.stat().st_mode & 0o001:
            return parent
    return None


def hidden_mounts(
    workdir: Path, hidden: list[Path], needed: Sequence[Path] = ()
) -> list[tuple[Path, list[Path]]]:
    """The mounts to make for `hidden` (resolved): (path to cover, paths shown again under it),
    existing paths, outermost first, leaving out those already covered by another (their mount
    point would not exist under its cover) unless they lie on the way down to a shown path.
    Shown again are workdir and `needed` (Python, our code); given `needed` (the service is
    root, the sandbox is not), a folder above one of them that is closed to others is covered
    too, showing only the way down."""
    shown = [workdir, *needed]
    covers = set(hidden)
    for path in shown if needed else ():
        closed = closed_ancestor(path)
        if closed is not None and not any(h == closed or h in closed.parents for h in hidden):
            covers.add(closed)
    chosen: list[tuple[Path, list[Path]]] = []
    for path in sorted(covers, key=lambda p: len(p.parts)):
        if path == workdir:
            raise ValueError(f"the sandbox workdir {path} is itself a hidden path")
        if not os.path.lexists(path):
            continue
        on_the_way = any(path in s.parents for s in shown)
        if any(q in path.parents and not on_the_way for q, _ in chosen):
            continue
        under = [s for s in shown if path in s.parents]
        # one shown inside another comes with it (and must not be made inside the host's copy)
        chosen.append((path, [s for s in under if not any(o in s.parents for o in under)]))
    return chosen
