"""Functions that tests/engine/test_executable_formats.py runs inside compressor.sandbox.

They live in their own module (not the test module) so that the sandboxed child can import them
without importing pytest or the tests' fixtures.
"""

from __future__ import annotations

import ctypes
import os
import socket
import time
from pathlib import Path
from typing import Any


def echo(value: int) -> dict[str, Any]:
    return {"double": value * 2, "cwd": os.getcwd(), "env": sorted(os.environ)}


def connect(host: str, port: int) -> dict[str, Any]:
    with socket.create_connection((host, port), timeout=2):
        return {"connected": True}


def read_file(path: str) -> dict[str, Any]:
    return {"text": Path(path).read_text()}


def list_dir(path: str) -> dict[str, Any]:
    """None where the folder is not there at all."""
    try:
        return {"entries": sorted(os.listdir(path))}
    except FileNotFoundError:
        return {"entries": None}


def peek(path: str) -> dict[str, Any]:
    """A file's text, or None where it is not there at all."""
    try:
        return {"text": Path(path).read_text()}
    except FileNotFoundError:
        return {"text": None}


def allocate(n_bytes: int) -> dict[str, Any]:
    block = bytearray(n_bytes)
    return {"allocated": len(block)}


def spin() -> dict[str, Any]:
    while True:
        time.sleep(0.01)


def native_write(path: str) -> dict[str, Any]:
    """Write with libc directly: the audit hook never sees this, only the kernel can stop it."""
    libc = ctypes.CDLL(None, use_errno=True)
    fd = libc.open(path.encode(), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    if fd < 0:
        return {"written": False, "errno": ctypes.get_errno()}
    libc.write(fd, b"escaped", 7)
    libc.close(fd)
    return {"written": True, "errno": 0}


def native_connect(host: str, port: int) -> dict[str, Any]:
    """connect(2) through libc, which the audit hook never sees: only the namespace stops it."""
    libc = ctypes.CDLL(None, use_errno=True)
    fd = libc.socket(socket.AF_INET, socket.SOCK_STREAM, 0)
    addr = (
        socket.AF_INET.to_bytes(2, "little")
        + port.to_bytes(2, "big")
        + socket.inet_aton(host)
        + bytes(8)
    )
    ok = libc.connect(fd, addr, len(addr)) == 0
    err = ctypes.get_errno()
    libc.close(fd)
    return {"connected": ok, "errno": err}


def native_unix_connect(path: str) -> dict[str, Any]:
    """connect(2) to a unix socket through libc: the network namespace does not cover these
    (they live in the file system), only hiding their folder does."""
    libc = ctypes.CDLL(None, use_errno=True)
    fd = libc.socket(socket.AF_UNIX, socket.SOCK_STREAM, 0)
    addr = socket.AF_UNIX.to_bytes(2, "little") + path.encode().ljust(108, b"\0")
    ok = libc.connect(fd, addr, len(addr)) == 0
    err = ctypes.get_errno()
    libc.close(fd)
    return {"connected": ok, "errno": err}


def exists(path: str) -> dict[str, Any]:
    return {"exists": os.path.lexists(path)}


def visible_pids() -> dict[str, Any]:
    return {"pids": sorted(int(n) for n in os.listdir("/proc") if n.isdigit())}


def leave_group_and_spin() -> dict[str, Any]:
    """A new session escapes a kill of the sandbox's process group; it must still not survive."""
    os.setsid()
    while True:
        time.sleep(0.01)


def burn() -> dict[str, Any]:
    n = 0
    while True:
        n += 1


def _libc() -> Any:
    return ctypes.CDLL(None, use_errno=True)


def fork_many(n: int) -> dict[str, Any]:
    """fork(2) through libc, out of the audit hook's sight; each child just waits to be killed."""
    libc, forked = _libc(), 0
    for _ in range(n):
        pid = libc.fork()
        if pid == 0:
            while True:
                libc.pause()
        if pid > 0:
            forked += 1
    return {"forked": forked}


def spawn_many(n: int) -> dict[str, Any]:
    """system(3) through libc: a shell started one after another, again below the audit hook."""
    libc = _libc()
    return {"started": sum(libc.system(b"exit 0") == 0 for _ in range(n))}


def hog_in_forks(children: int, n_bytes: int) -> dict[str, Any]:
    """Each forked child fills n_bytes and reports through a pipe: memory summed over
    processes, which a limit per process does not bound."""
    libc = _libc()
    libc.malloc.restype = ctypes.c_void_p
    read_end, write_end = os.pipe()
    for _ in range(children):
        if libc.fork() == 0:
            block = libc.malloc(ctypes.c_size_t(n_bytes))
            if block:
                ctypes.memset(block, 1, n_bytes)
                os.write(write_end, b"x")
            while True:
                libc.pause()
    os.close(write_end)
    os.set_blocking(read_end, False)
    holding, deadline = 0, time.monotonic() + 20
    while holding < children and time.monotonic() < deadline:
        try:
            holding += len(os.read(read_end, 64))
        except BlockingIOError:
            time.sleep(0.1)
    return {"holding": holding}
