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
from compressor.sandbox.cgroup import join_cgroup
from compressor.sandbox.exchange import write_result
from compressor.sandbox.namespaces import (
    capabilities,
    drop_root,
    enter_namespaces,
    is_within,
    mount_proc,
)
from compressor.sandbox.seccomp import refuse_new_processes

_DETAIL_CHARS = 2000  # for the server's log: the uploader never sees it


def _set_limits(limits: dict[str, Any]) -> None:
    cpu = int(limits["cpu_seconds"])
    # Private data, not address space: torch's CUDA build maps over 3 GiB of shared libraries.
    resource.setrlimit(resource.RLIMIT_DATA, (int(limits["memory_bytes"]),) * 2)
    # The child is its PID namespace's init, which ignores the soft limit's SIGXCPU: the hard
    # limit's SIGKILL is what stops it.
    resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu + 1))
    resource.setrlimit(resource.RLIMIT_FSIZE, (int(limits["max_file_bytes"]),) * 2)
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    # Threads count too. Per user namespace (the service's own processes are not counted), or,
    # as root, for SANDBOX_UID: the kernel exempts root from this limit, so it is dropped first.
    resource.setrlimit(resource.RLIMIT_NPROC, (int(limits["max_processes"]),) * 2)


def _isolation_failed(workdir: str, exc: BaseException) -> int:
    write_result(
        workdir,
        {
            "ok": False,
            "kind": "isolation",
            "detail": f"this server cannot isolate the model's loader: {exc}",
        },
    )
    return 3


def isolate_and_wait(call_path: str) -> int:
    """Stage 1; returns the exit status."""
    with open(call_path) as fh:
        call = json.load(fh)
    workdir = call["workdir"]
    try:
        if call.get("cgroup"):
            join_cgroup(call["cgroup"])
        enter_namespaces(workdir, call["covers"])
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
            drop_root()
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
                "detail": f"the model's loader crashed ({signal.Signals(sig).name})",
            },
        )
        return 128 + sig
    return os.WEXITSTATUS(status)


def _verify_isolation(call: dict[str, Any]) -> None:
    """Fail closed: check the layers the parent relies on are really in place."""
    if capabilities() != 0:
        raise OSError(errno.EPERM, "capabilities were not dropped")
    if 0 in os.getresuid():
        raise OSError(errno.EPERM, "running as root")
    if any(name != "lo" for _, name in socket.if_nameindex()):
        raise OSError(errno.EPERM, "a network interface is visible")
    for path, shown in call["covers"]:
        if not os.path.isdir(path):
            if os.path.lexists(path) and os.path.getsize(path):
                raise OSError(errno.EPERM, f"{path} is not hidden")
            continue
        # nothing but the way down to each shown path
        ways = {str(p) for s in shown for p in Path(s).parents if is_within(str(p), path)}
        ways |= {path, *shown}
        for folder in ways - set(shown):
            if any(os.path.join(folder, entry) not in ways for entry in os.listdir(folder)):
                raise OSError(errno.EPERM, f"{path} is not hidden")
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
        # Trusted imports may start programs (torch's runs ldconfig); nothing after them may.
        refuse_new_processes()
        sys.addaudithook(audit_hook(workdir, violations))
        value = func(**call["kwargs"])
        if not isinstance(value, dict):
            raise TypeError(f"{call['func']} returned {type(value).__name__}, not a dict")
        result = {"ok": True, "value": value}
        json.dumps(result)
    except BaseException as exc:
        detail = f"{type(exc).__name__}: {exc}"
        result = {"ok": False, "kind": _classify(exc), "detail": detail[:_DETAIL_CHARS]}
        code = getattr(exc, "sandbox_code", None)
        if isinstance(code, str):
            result["code"] = code[:64]
    if violations:  # even when the code caught the refusal and carried on
        result = {"ok": False, "kind": "violation", "action": violations[0]}
    write_result(workdir, result)
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)  # skip atexit handlers and non-daemon threads the loaded code may have left
