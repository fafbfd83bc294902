"""The child's two stages. Stage 1 enters the namespaces, sets the limits, and forks stage 2 as
the new PID namespace's init, then waits for it. Stage 2 checks the isolation really holds,
installs the audit hook, runs the function and writes its result."""

from __future__ import annotations

import errno
import importlib
import json
import os
import resource
import signal
import socket
import sys
from pathlib import Path
from typing import Any

from compressor.sandbox.audit import audit_hook
from compressor.sandbox.exchange import write_result
from compressor.sandbox.namespaces import capabilities, enter_namespaces, is_within, mount_proc


def _set_limits(limits: dict[str, Any]) -> None:
    cpu = int(limits["cpu_seconds"])
    # Private data, not address space: torch's CUDA build maps over 3 GiB of shared libraries.
    resource.setrlimit(resource.RLIMIT_DATA, (int(limits["memory_bytes"]),) * 2)
    # The child is its PID namespace's init, which ignores the soft limit's SIGXCPU: the hard
    # limit's SIGKILL is what stops it.
    resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu + 1))
    resource.setrlimit(resource.RLIMIT_FSIZE, (int(limits["max_file_bytes"]),) * 2)
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))


def _isolation_failed(workdir: str, exc: BaseException) -> int:
    write_result(
        workdir,
        {
            "ok": False,
            "kind": "isolation",
            "message": f"this server cannot isolate the model's loader ({exc}), so the model "
            "was not loaded",
        },
    )
    return 3


def isolate_and_wait(call_path: str) -> int:
    """Stage 1; returns the exit status."""
    with open(call_path) as fh:
        call = json.load(fh)
    workdir = call["workdir"]
    try:
        enter_namespaces(workdir, call["hidden"])
        _set_limits(call["limits"])
    except (OSError, ValueError) as exc:
        return _isolation_failed(workdir, exc)
    # SIGTERM (from run_sandboxed's timeout) must reach a handler that knows the child's pid:
    # held back until both exist.
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM})
    pid = os.fork()
    if pid == 0:  # PID 1 of the new namespace: when it ends, everything it started ends too
        try:
            signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGTERM})
            mount_proc()
            argv = [sys.executable, "-P", "-m", "compressor.sandbox", "--inside", call_path]
            os.execve(sys.executable, argv, dict(os.environ))
        except BaseException as exc:
            _isolation_failed(workdir, exc)
        os._exit(3)
    signal.signal(signal.SIGTERM, lambda *_: os.kill(pid, signal.SIGKILL))
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGTERM})
    _, status, usage = os.wait4(pid, 0)
    if os.WIFSIGNALED(status):
        sig = os.WTERMSIG(status)
        near_cpu_limit = usage.ru_utime + usage.ru_stime >= call["limits"]["cpu_seconds"] - 1
        if sig == signal.SIGXCPU or (sig == signal.SIGKILL and near_cpu_limit):
            kind = "cpu"
        elif sig == signal.SIGKILL:
            kind = "memory"  # the OOM killer, the only other sender of SIGKILL in here
        else:
            kind = "signal"
        write_result(
            workdir,
            {
                "ok": False,
                "kind": kind,
                "message": f"the model's loader crashed ({signal.Signals(sig).name})",
            },
        )
        return 128 + sig
    return os.WEXITSTATUS(status)


def _verify_isolation(call: dict[str, Any]) -> None:
    """Fail closed: check the layers the parent relies on are really in place."""
    if capabilities() != 0:
        raise OSError(errno.EPERM, "capabilities were not dropped")
    if any(name != "lo" for _, name in socket.if_nameindex()):
        raise OSError(errno.EPERM, "a network interface is visible")
    workdir = call["workdir"]
    for path in call["hidden"]:
        if not os.path.isdir(path):
            if os.path.lexists(path) and os.path.getsize(path):
                raise OSError(errno.EPERM, f"{path} is not hidden")
            continue
        if not is_within(workdir, path):
            if os.listdir(path):
                raise OSError(errno.EPERM, f"{path} is not hidden")
            continue
        # only the way down to workdir: one entry per level
        current = path
        for part in Path(os.path.relpath(workdir, path)).parts:
            if os.listdir(current) != [part]:
                raise OSError(errno.EPERM, f"{path} is not hidden")
            current = os.path.join(current, part)
    if os.access("/", os.W_OK) or not os.access(".", os.W_OK):
        raise OSError(errno.EPERM, "the file system is not read-only outside the workdir")


def _classify(exc: BaseException) -> str:
    text = str(exc)
    if isinstance(exc, MemoryError) or "can't allocate memory" in text or "bad_alloc" in text:
        return "memory"
    if isinstance(exc, OSError) and exc.errno == errno.EFBIG:
        return "file_size"
    return "error"


def verify_and_call(call_path: str) -> None:
    """Stage 2; never returns."""
    with open(call_path) as fh:
        call = json.load(fh)
    workdir = call["workdir"]
    try:
        _verify_isolation(call)
    except OSError as exc:
        os._exit(_isolation_failed(workdir, exc))
    sys.dont_write_bytecode = True  # a refused .pyc write outside workdir must not break imports
    violations: list[str] = []
    result: dict[str, Any]
    try:
        module, _, name = call["func"].partition(":")
        # Our converter and the libraries it names are trusted: they load before the hook.
        # Only the call opens the upload.
        for trusted in call.get("preload", []):
            importlib.import_module(trusted)
        func = getattr(importlib.import_module(module), name)
        sys.addaudithook(audit_hook(workdir, violations))
        value = func(**call["kwargs"])
        if not isinstance(value, dict):
            raise TypeError(f"{call['func']} returned {type(value).__name__}, not a dict")
        result = {"ok": True, "value": value}
        json.dumps(result)
    except BaseException as exc:
        message = str(exc) or type(exc).__name__
        result = {"ok": False, "kind": _classify(exc), "message": message}
    if violations:  # even when the code caught the refusal and carried on
        result = {"ok": False, "kind": "violation", "message": violations[0]}
    write_result(workdir, result)
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)  # skip atexit handlers and non-daemon threads the loaded code may have left
