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
    return {"entries": sorted(os.listdir(path))}


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
