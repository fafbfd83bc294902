"""The audit hook, the second layer inside the child: it refuses network, process and
out-of-workdir writes from Python code, and records each refusal so that code which catches
the error and carries on still fails the call."""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any


class SandboxViolation(PermissionError):
    """Raised in the child by the audit hook; a PermissionError so libraries treat it as one."""


_REFUSED = {
    "socket.connect": "open a network connection",
    "socket.sendto": "open a network connection",
    "socket.sendmsg": "open a network connection",
    "socket.bind": "listen on a network port",
    "subprocess.Popen": "start another program",
    "os.system": "start another program",
    "os.exec": "start another program",
    "os.posix_spawn": "start another program",
    "os.spawn": "start another program",
    "pty.spawn": "start another program",
    "os.fork": "start another process",
    "os.forkpty": "start another process",
}
# event -> (index of a path argument, index of its dir_fd argument or None)
_WRITES: dict[str, tuple[tuple[int, int | None], ...]] = {
    "os.remove": ((0, 1),),
    "os.rmdir": ((0, 1),),
    "os.mkdir": ((0, 2),),
    "os.mkfifo": ((0, 2),),
    "os.mknod": ((0, 3),),
    "os.rename": ((0, 2), (1, 3)),
    "os.link": ((1, 3),),
    "os.symlink": ((1, 2),),
    "os.truncate": ((0, None),),
    "os.chmod": ((0, 2),),
    "os.chown": ((0, 3),),
    "os.utime": ((0, 3),),
    "os.setxattr": ((0, None),),
    "os.removexattr": ((0, None),),
}
_WRITE_OUTSIDE = "write outside its working folder"
# What the parent reports: an action from this set only, never text from the child.
ACTIONS = frozenset(_REFUSED.values()) | {_WRITE_OUTSIDE}
_WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_APPEND


def refusal(action: str) -> str:
    return f"the model's loader tried to {action}, which is not allowed"


def _resolve(path: Any, dir_fd: Any) -> str | None:
    if isinstance(path, int) or path is None:
        return None  # an already open descriptor: its opening was checked
    name = os.fsdecode(os.fspath(path))
    if not os.path.isabs(name) and isinstance(dir_fd, int) and dir_fd >= 0:
        name = os.path.join(os.readlink(f"/proc/self/fd/{dir_fd}"), name)
    return os.path.realpath(name)


def audit_hook(workdir: str, violations: list[str]) -> Callable[[str, tuple[Any, ...]], None]:
    inside = workdir.rstrip("/") + "/"

    def refuse(action: str) -> None:
        violations.append(action)
        raise SandboxViolation(refusal(action))

    def hook(event: str, args: tuple[Any, ...]) -> None:
        if event in _REFUSED:
            refuse(_REFUSED[event])
        if event == "open":
            path, mode, flags = args
            writes = (isinstance(flags, int) and flags & _WRITE_FLAGS) or (
                isinstance(mode, str) and any(c in mode for c in "wax+")
            )
            targets = [(path, None)] if writes else []
        elif event in _WRITES:
            targets = [(args[i], None if d is None else args[d]) for i, d in _WRITES[event]]
        else:
            return
        for path, dir_fd in targets:
            resolved = _resolve(path, dir_fd)
            if resolved is not None and resolved != "/dev/null" and not resolved.startswith(inside):
                refuse(_WRITE_OUTSIDE)

    return hook
